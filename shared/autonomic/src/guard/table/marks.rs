//! Watermarks: `mark#<name>`, a number that only rises (the newest event of a kind handled).

use super::*;

impl StateTable {
    /// Raises the watermark `name` to `value` unless it is already higher. Returns whether it
    /// stands at `value` now.
    /// Used for "the newest transition of this alarm already handled".
    pub async fn advance_watermark(
        &self,
        name: &str,
        value: i64,
        ttl_s: i64,
    ) -> Result<bool, CallError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("mark#{name}")))
            .item("value", n(value))
            .item("ttl", n(ttl_s))
            // Equal passes: an owner taking over an interrupted attempt re-passes its own mark.
            .condition_expression("attribute_not_exists(pk) OR #value <= :value")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":value", n(value))
            .send()
            .await;
        wrote_unless_condition_failed("PutItem", r)
    }

    /// The watermark `name`, if set.
    pub async fn read_watermark(&self, name: &str) -> Result<Option<i64>, CallError> {
        let item = self.read(&format!("mark#{name}")).await?;
        Ok(item.and_then(|item| get_n(&item, "value")))
    }
}
