//! The batch driver: a function that handles several items per invocation (alarm transitions,
//! pipelines, workloads) works through them with one rule for the deadline and one for the error
//! the invocation returns.
//!
//! - No item starts with less than [`crate::context::WORK_RESERVE`] left: it is `not_done`, and
//!   the invocation fails with [`FunctionError::DeadlineNear`] naming every item left, so the
//!   delivery comes back for them (the ones done are claimed and not repeated).
//! - One item failing does not stop the others; each failure is logged and audited once.
//! - The invocation's error: `DeadlineNear` when items were left, else the first retryable
//!   failure (the delivery must come back for it), else the first failure; none, the lines.

use std::time::Duration;

use serde::Serialize;

use crate::context::Invocation;
use crate::error::FunctionError;

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ItemLine<L> {
    /// It failed; the invocation fails too.
    Failed {
        target: String,
        #[serde(rename = "errorType")]
        error_type: String,
        error: String,
    },
    /// Not started: the deadline was near.
    NotDone { target: String },
    /// Handled: the function's own line (acted, skipped, planned).
    #[serde(untagged)]
    Handled(L),
}

/// Works through a batch's items in order, each on its own:
///
/// ```ignore
/// let mut items = Driver::new(PROMOTE);
/// for t in &transitions {
///     if items.start(inv, &t.name) {
///         let result = self.handle_transition(t, inv).await;
///         items.done(inv, &t.name, &t.transition_id(), result);
///     }
/// }
/// let lines = items.finish(inv)?;
/// ```
#[derive(Debug)]
pub struct Driver<L> {
    action: String,
    lines: Vec<ItemLine<L>>,
    errors: Vec<FunctionError>,
    not_done: Vec<String>,
}

impl<L> Driver<L> {
    /// `action` is the audit action of a failed item.
    pub fn new(action: &str) -> Self {
        Self {
            action: action.to_string(),
            lines: Vec::new(),
            errors: Vec::new(),
            not_done: Vec::new(),
        }
    }

    /// Whether to start `target` now: not this close to the deadline (it is then recorded as not
    /// done, and comes back with the retry).
    pub fn start(&mut self, inv: &Invocation, target: &str) -> bool {
        if inv.should_stop() {
            self.not_done.push(target.to_string());
            self.lines.push(ItemLine::NotDone {
                target: target.to_string(),
            });
            return false;
        }
        true
    }

    /// [`Driver::start`] for an item that needs `needed` beyond the work reserve (a rollout that
    /// must be watched and perhaps rolled back): not started without that much time left.
    pub fn start_needing(&mut self, inv: &Invocation, target: &str, needed: Duration) -> bool {
        if !inv.has_time_for(needed) {
            self.not_done.push(target.to_string());
            self.lines.push(ItemLine::NotDone {
                target: target.to_string(),
            });
            return false;
        }
        true
    }

    /// [`Driver::done`] for an item whose failure its own audit record already says (a failed
    /// rollback): kept for the invocation's error and the response, not audited again.
    pub fn done_audited(&mut self, target: &str, result: Result<L, FunctionError>) {
        match result {
            Ok(line) => self.lines.push(ItemLine::Handled(line)),
            Err(e) => {
                tracing::error!(target = %target, error_type = %e.error_type(), error = %e, "item failed");
                self.lines.push(ItemLine::Failed {
                    target: target.to_string(),
                    error_type: e.error_type(),
                    error: e.to_string(),
                });
                self.errors.push(e);
            }
        }
    }

    /// What became of an item started: its line, or its failure (logged and audited).
    pub fn done(
        &mut self,
        inv: &mut Invocation,
        target: &str,
        trigger: &str,
        result: Result<L, FunctionError>,
    ) {
        match result {
            Ok(line) => self.lines.push(ItemLine::Handled(line)),
            Err(e) => {
                tracing::error!(target = %target, error_type = %e.error_type(), error = %e, "item failed");
                inv.failed(
                    &self.action,
                    target,
                    trigger,
                    &e.error_type(),
                    serde_json::json!({"error": e.to_string()}),
                );
                self.lines.push(ItemLine::Failed {
                    target: target.to_string(),
                    error_type: e.error_type(),
                    error: e.to_string(),
                });
                self.errors.push(e);
            }
        }
    }

    /// The lines, or the invocation's error: [`FunctionError::DeadlineNear`] naming every item
    /// left, else the first retryable failure, else the first failure.
    pub fn finish(mut self, inv: &mut Invocation) -> Result<Vec<ItemLine<L>>, FunctionError> {
        if !self.not_done.is_empty() {
            let e = FunctionError::DeadlineNear {
                not_done: self.not_done.join(", "),
            };
            inv.failed(
                &self.action,
                &self.not_done.join(","),
                "",
                &e.error_type(),
                serde_json::json!({}),
            );
            self.errors.insert(0, e);
        }
        match FunctionError::first_retryable(self.errors) {
            Some(e) => Err(e),
            None => Ok(self.lines),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Reporter;
    use crate::error::{CallError, ErrorClass};
    use crate::time::now_ms;

    fn call(code: &str, class: ErrorClass) -> FunctionError {
        FunctionError::Call(CallError::new("s", "Op", code, "m", class))
    }

    /// The items through a driver, each handled by `work`.
    fn run(
        inv: &mut Invocation,
        items: &[&str],
        work: impl Fn(&str) -> Result<String, FunctionError>,
    ) -> (Vec<ItemLine<String>>, Option<FunctionError>) {
        let mut driver = Driver::new("act");
        for item in items {
            if driver.start(inv, item) {
                driver.done(inv, item, &format!("t-{item}"), work(item));
            }
        }
        let lines = driver.lines.clone();
        (lines, driver.finish(inv).err())
    }

    #[test]
    fn one_failure_does_not_stop_the_others_and_a_retryable_one_is_returned() {
        let (reporter, audit) = Reporter::in_memory("f");
        let mut inv = Invocation::new(&reporter, "r", now_ms() + 60_000, false);
        let (lines, error) = run(&mut inv, &["a", "b", "c", "d"], |s| match s {
            "b" => Err(call("AccessDenied", ErrorClass::Permanent)),
            "c" => Err(call("Throttling", ErrorClass::Retryable)),
            s => Ok(s.to_uppercase()),
        });
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], ItemLine::Handled("A".to_string()));
        assert_eq!(lines[3], ItemLine::Handled("D".to_string()));
        assert_eq!(
            error.map(|e| e.error_type()).as_deref(),
            Some("Retryable.Throttling"),
            "the retryable failure, though a permanent one came first"
        );
        assert_eq!(audit.lock().unwrap().len(), 2, "each failure audited once");
    }

    #[test]
    fn items_left_at_the_deadline_are_named_and_come_back() {
        let (reporter, _) = Reporter::in_memory("f");
        let mut inv = Invocation::new(&reporter, "r", now_ms() + 1_000, false);
        let (lines, error) = run(&mut inv, &["a", "b"], |s| Ok(s.to_string()));
        assert_eq!(
            lines,
            vec![
                ItemLine::NotDone { target: "a".into() },
                ItemLine::NotDone { target: "b".into() }
            ]
        );
        let e = error.unwrap();
        assert_eq!(e.error_type(), "Retryable.DeadlineNear");
        assert!(e.to_string().contains("a, b"), "{e}");
    }

    #[test]
    fn a_permanent_failure_alone_is_returned_and_none_is_the_lines() {
        let (reporter, _) = Reporter::in_memory("f");
        let mut inv = Invocation::new(&reporter, "r", now_ms() + 60_000, false);
        let (_, error) = run(&mut inv, &["a"], |_| {
            Err(call("AccessDenied", ErrorClass::Permanent))
        });
        assert_eq!(error.unwrap().error_type(), "Permanent.AccessDenied");
        let mut driver = Driver::new("act");
        assert!(driver.start(&inv, "a"));
        driver.done(&mut inv, "a", "t", Ok(1));
        assert_eq!(driver.finish(&mut inv).unwrap(), vec![ItemLine::Handled(1)]);
    }

    #[test]
    fn an_item_that_needs_more_time_than_is_left_is_not_started() {
        let (reporter, audit) = Reporter::in_memory("f");
        let mut inv = Invocation::new(&reporter, "r", now_ms() + 30_000, false);
        let mut driver: Driver<()> = Driver::new("act");
        assert!(driver.start_needing(&inv, "a", Duration::from_secs(10)));
        assert!(!driver.start_needing(&inv, "b", Duration::from_secs(20)));
        // A failure its own record already says is not audited twice.
        driver.done_audited("a", Err(call("Throttling", ErrorClass::Retryable)));
        assert!(audit.lock().unwrap().is_empty());
        let e = driver.finish(&mut inv).unwrap_err();
        assert_eq!(e.error_type(), "Retryable.DeadlineNear");
        assert!(e.to_string().contains('b'), "{e}");
    }

    #[test]
    fn lines_serialise_as_the_function_wrote_them_or_with_their_outcome() {
        let line: ItemLine<serde_json::Value> =
            ItemLine::Handled(serde_json::json!({"outcome": "started"}));
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            serde_json::json!({"outcome": "started"})
        );
        let line: ItemLine<serde_json::Value> = ItemLine::NotDone { target: "x".into() };
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            serde_json::json!({"outcome": "not_done", "target": "x"})
        );
    }
}
