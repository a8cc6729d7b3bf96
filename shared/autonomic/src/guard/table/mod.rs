//! The state table's items and the conditional writes on them, one module per kind of item; the
//! typed guards in [`super::claim`] and [`super::lease`] are built on these. Time is an argument
//! (epoch milliseconds), never read here, so tests can move it.

mod breakers;
mod claims;
mod leases;
mod marks;
mod registry;

pub use breakers::BreakerRecord;
pub use claims::Claim;
pub use leases::{Lease, LeaseKind, LeaseRecord};

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde_json::Value;

use crate::error::{CallError, ProvideErrorMetadata, SdkError};

const PK: &str = "pk";
const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";

/// The state table.
#[derive(Debug, Clone)]
pub struct StateTable {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn lease_pk(name: &str) -> String {
    format!("lease#{name}")
}

fn breaker_pk(name: &str) -> String {
    format!("breaker#{name}")
}

fn registry_pk(name: &str) -> String {
    format!("registry#{name}")
}

/// Whole seconds as i64, saturating (configuration bounds keep real values far below).
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Ok when the write succeeded or its condition did not hold (the item is not ours to change).
fn unless_condition_failed<O, E>(
    operation: &'static str,
    r: Result<O, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<(), CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    wrote_unless_condition_failed(operation, r).map(drop)
}

/// Whether the write was made: `false` when its condition did not hold.
fn wrote_unless_condition_failed<O, E>(
    operation: &'static str,
    r: Result<O, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<bool, CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|se| se.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(CallError::aws("dynamodb", operation, e)),
    }
}

fn is_condition_failed(err: &SdkError<PutItemError, impl std::fmt::Debug>) -> bool {
    matches!(
        err.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

impl StateTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One item, read consistently.
    async fn read(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>, CallError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "GetItem", e))?;
        Ok(r.item)
    }

    /// Deletes the item `pk` if `holder` holds it; an item someone else holds is left alone.
    async fn delete_if_held(&self, pk: &str, holder: &str) -> Result<(), CallError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        unless_condition_failed("DeleteItem", r)
    }

    /// One read, at cold start: a missing table or a missing permission fails the start (as a
    /// configuration error naming `STATE_TABLE_NAME`), not every event after it. Any other
    /// failure (throttling, a timeout) is logged and left to the first event.
    pub async fn probe_at_cold_start(&self) -> Result<(), crate::FunctionError> {
        let read = self.read("probe#cold-start").await;
        crate::cold_start::phase("state table probe");
        match read {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() || e.is_access_denied() => Err(crate::config::ConfigError {
                problems: vec![crate::config::ConfigProblem {
                    variable: crate::config::CommonConfig::STATE_TABLE_NAME.into(),
                    source: None,
                    problem: format!("table {:?} cannot be read: {e}", self.table),
                }],
            }
            .into()),
            Err(e) => {
                tracing::warn!(error = %e, table = %self.table, "could not read the state table at cold start");
                Ok(())
            }
        }
    }
}
