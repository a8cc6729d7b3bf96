//! What became of each message of a batch: the typed reason a message was not submitted, and the
//! FIFO rule that once a message of a group fails, the group's later messages are not sent.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aws_lambda_events::sqs::{BatchItemFailure, SqsMessage};

/// Why a message was not submitted. Each has a stable code, the audit record's `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSubmitted {
    /// The body or one of its paths cannot be used; it will not get better (it ends in the DLQ).
    Malformed(String),
    /// Its distribution cannot be found: an unknown domain, an unmapped bucket, or the
    /// distribution list could not be read.
    Unresolvable(String),
    /// CloudFront's in-progress limits leave no room for it now.
    Deferred(String),
    /// Another invocation held the distribution's lease for all of this invocation's time.
    LeaseHeld(String),
    /// An AWS call failed (counting invalidations in progress, taking the lease, creating it).
    AwsError(String),
    /// Another invocation is sending the same invalidation right now.
    InProgress(String),
    /// An earlier message of its FIFO group failed, so it is not sent before it.
    FifoBlocked { earlier: String },
    /// The invocation stopped taking new work before its deadline.
    Deadline,
}

impl NotSubmitted {
    /// The stable audit code.
    pub fn code(&self) -> &'static str {
        match self {
            NotSubmitted::Malformed(_) => "malformed",
            NotSubmitted::Unresolvable(_) => "unresolvable",
            NotSubmitted::Deferred(_) => "deferred",
            NotSubmitted::LeaseHeld(_) => "lease_held",
            NotSubmitted::AwsError(_) => "aws_error",
            NotSubmitted::InProgress(_) => "in_progress",
            NotSubmitted::FifoBlocked { .. } => "fifo_blocked",
            NotSubmitted::Deadline => "deadline",
        }
    }
}

impl fmt::Display for NotSubmitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotSubmitted::Malformed(d)
            | NotSubmitted::Unresolvable(d)
            | NotSubmitted::Deferred(d)
            | NotSubmitted::LeaseHeld(d)
            | NotSubmitted::AwsError(d)
            | NotSubmitted::InProgress(d) => f.write_str(d),
            NotSubmitted::FifoBlocked { earlier } => {
                write!(f, "an earlier message ({earlier}) of its FIFO group failed")
            }
            NotSubmitted::Deadline => {
                f.write_str("the invocation stopped taking new work before its deadline")
            }
        }
    }
}

/// The batch's messages and what became of each.
pub struct Ledger<'a> {
    records: &'a [SqsMessage],
    fifo: bool,
    failed: BTreeMap<usize, NotSubmitted>,
    /// FIFO message group → index of its first failed message.
    group_failed_at: HashMap<String, usize>,
    submitted: Vec<bool>,
}

impl<'a> Ledger<'a> {
    pub fn new(records: &'a [SqsMessage], fifo: bool) -> Self {
        Self {
            records,
            fifo,
            failed: BTreeMap::new(),
            group_failed_at: HashMap::new(),
            submitted: vec![false; records.len()],
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn fifo(&self) -> bool {
        self.fifo
    }

    pub fn message(&self, i: usize) -> &'a SqsMessage {
        &self.records[i]
    }

    pub fn message_id(&self, i: usize) -> &'a str {
        self.records[i].message_id.as_deref().unwrap_or_default()
    }

    fn group(&self, i: usize) -> Option<&'a str> {
        self.records[i]
            .attributes
            .get("MessageGroupId")
            .map(String::as_str)
    }

    /// Why message `i` may not be sent now: an earlier message of its FIFO group failed.
    pub fn blocked(&self, i: usize) -> Option<NotSubmitted> {
        if !self.fifo {
            return None;
        }
        let at = *self.group_failed_at.get(self.group(i)?)?;
        (at < i).then(|| NotSubmitted::FifoBlocked {
            earlier: self.message_id(at).to_string(),
        })
    }

    pub fn has_failed(&self, i: usize) -> bool {
        self.failed.contains_key(&i)
    }

    /// Records that message `i` is not submitted; false when it already was recorded.
    pub fn fail(&mut self, i: usize, reason: NotSubmitted) -> bool {
        if self.failed.contains_key(&i) {
            return false;
        }
        if self.fifo
            && let Some(g) = self.group(i)
        {
            let at = self.group_failed_at.entry(g.to_string()).or_insert(i);
            *at = (*at).min(i);
        }
        self.failed.insert(i, reason);
        true
    }

    pub fn submitted(&mut self, i: usize) {
        self.submitted[i] = true;
    }

    /// The messages to report: every one not wholly submitted (all of them in dry run, so
    /// nothing leaves the queue).
    pub fn failures(&self, dry_run: bool) -> Vec<BatchItemFailure> {
        (0..self.records.len())
            .filter(|&i| {
                dry_run
                    || self.failed.contains_key(&i)
                    || (self.blocked(i).is_some() && !self.submitted[i])
            })
            .map(|i| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = self.message_id(i).to_string();
                f
            })
            .collect()
    }

    /// Message index → why it was not submitted (the dry-run response shows it).
    pub fn failed_reasons(&self) -> BTreeMap<usize, String> {
        self.failed
            .iter()
            .map(|(i, r)| (*i, r.to_string()))
            .collect()
    }
}
