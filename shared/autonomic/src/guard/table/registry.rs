//! Registries: `registry#<name>`, a map of keys to JSON values (the alarms asg-scaler holds).

use super::*;

impl StateTable {
    /// Sets `key` to `value` in the registry `name` (one item holding a map: a small, named set
    /// of things to come back to, such as the alarms asg-scaler keeps stepping).
    pub async fn registry_set(
        &self,
        name: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), CallError> {
        let pk = registry_pk(name);
        // A nested path can be set only once its map exists.
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .update_expression("SET entries = if_not_exists(entries, :empty)")
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .update_expression("SET entries.#key = :value")
            .expression_attribute_names("#key", key)
            .expression_attribute_values(":value", s(value.to_string()))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    /// Removes `key` from the registry `name`.
    pub async fn registry_remove(&self, name: &str, key: &str) -> Result<(), CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(registry_pk(name)))
            .update_expression("REMOVE entries.#key")
            .condition_expression("attribute_exists(entries)")
            .expression_attribute_names("#key", key)
            .send()
            .await;
        unless_condition_failed("UpdateItem", r)
    }

    /// The registry `name`: key → value.
    pub async fn registry(&self, name: &str) -> Result<Vec<(String, Value)>, CallError> {
        let item = self.read(&registry_pk(name)).await?;
        let Some(AttributeValue::M(entries)) = item.and_then(|mut i| i.remove("entries")) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, Value)> = entries
            .into_iter()
            .filter_map(|(k, v)| {
                let v = serde_json::from_str(v.as_s().ok()?).ok()?;
                Some((k, v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
