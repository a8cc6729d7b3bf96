//! Configuration from environment variables, read and validated once at cold start.
//!
//! Every missing or invalid variable is collected, so one [`ConfigError`] names all of them: a
//! deploy with three mistakes is fixed in one go, not three. Configuration documents may be given
//! by reference ([`documents`]).

pub mod documents;
pub mod s3_object;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: String,
    /// Where the variable's document was read from, when it was given by reference.
    pub source: Option<String>,
    pub problem: String,
}

/// All the problems found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for p in &self.problems {
            match &p.source {
                Some(source) => write!(f, " {} (from {source}): {};", p.variable, p.problem)?,
                None => write!(f, " {}: {};", p.variable, p.problem)?,
            }
        }
        Ok(())
    }
}

/// Reads variables and remembers every problem until [`Env::finish`].
pub struct Env {
    vars: HashMap<String, Value>,
    /// Document variables given by reference, and where their documents came from.
    sources: HashMap<String, documents::DocumentSource>,
    problems: Vec<ConfigProblem>,
}

enum Value {
    Text(String),
    NotUtf8,
    /// Its problem is already recorded (a document reference that could not be read).
    Reported,
}

impl Env {
    /// The process environment. Variables whose name or value is not UTF-8 do not stop the
    /// start (`std::env::vars` would panic); reading such a value is a configuration problem.
    pub fn from_process() -> Self {
        Self::from_os(std::env::vars_os())
    }

    /// Variables as the OS gives them.
    pub fn from_os(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .filter_map(|(k, v)| {
                    let value = v.into_string().map_or(Value::NotUtf8, Value::Text);
                    Some((k.into_string().ok()?, value))
                })
                .collect(),
            sources: HashMap::new(),
            problems: Vec::new(),
        }
    }

    /// A given set of variables (tests, and the local runner).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), Value::Text(v.into())))
                .collect(),
            sources: HashMap::new(),
            problems: Vec::new(),
        }
    }

    /// Records a problem with `variable` found by the caller (a rule document that fails to parse).
    pub fn problem(&mut self, variable: &str, problem: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: variable.to_string(),
            source: self
                .sources
                .get(variable)
                .and_then(documents::DocumentSource::describe),
            problem: problem.into(),
        });
    }

    /// The trimmed value of `name`; `Ok(None)` when unset or blank.
    fn raw(&self, name: &str) -> Result<Option<String>, Raw> {
        match self.vars.get(name) {
            Some(Value::Text(v)) => Ok(Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_owned)),
            Some(Value::NotUtf8) => Err(Raw::Problem("not valid UTF-8")),
            Some(Value::Reported) => Err(Raw::Reported),
            None => Ok(None),
        }
    }

    /// Replaces a variable's value (a document read by reference); `None` when its problem is
    /// already recorded, so that reading it later adds no second one.
    fn set(&mut self, name: &str, text: Option<String>) {
        let value = text.map_or(Value::Reported, Value::Text);
        self.vars.insert(name.to_string(), value);
    }

    /// A variable that must be set; `None` (and a recorded problem) when it is not.
    pub fn required<T: FromStr>(&mut self, name: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        self.parse(name, true, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }

    /// A variable with a default.
    pub fn optional<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        self.parse(name, false, |s| s.parse::<T>().map_err(|e| e.to_string()))
            .unwrap_or(default)
    }

    /// A boolean: `true`/`false`, `1`/`0`, `yes`/`no` (any case).
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        self.parse(name, false, parse_flag).unwrap_or(default)
    }

    /// A duration in whole seconds, within `[min, max]`.
    pub fn seconds(&mut self, name: &str, default: Duration, min: u64, max: u64) -> Duration {
        self.parse(name, false, |s| {
            let secs = s
                .parse::<u64>()
                .map_err(|_| format!("expected whole seconds, got {s:?}"))?;
            if secs < min || secs > max {
                return Err(format!("{secs} is outside {min}..={max} seconds"));
            }
            Ok(Duration::from_secs(secs))
        })
        .unwrap_or(default)
    }

    /// A maximum event age (a function's `MAX_EVENT_AGE_SECONDS`): events older than this are
    /// stale, up to a week (older is history, not a signal); `0` turns the check off (`None`).
    pub fn max_event_age(&mut self, name: &str, default: Duration) -> Option<Duration> {
        let age = self.seconds(name, default, 0, 7 * 24 * 3600);
        (!age.is_zero()).then_some(age)
    }

    /// Any variable, parsed by `parse`; missing is a problem only when `required`.
    pub fn parse<T>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = match self.raw(name) {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                if required {
                    self.problem(name, "required but not set");
                }
                return None;
            }
            Err(Raw::Problem(problem)) => {
                self.problem(name, problem);
                return None;
            }
            Err(Raw::Reported) => return None,
        };
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(name, e);
                None
            }
        }
    }

    /// Ends reading and hands back `value`, which is `None` only when a problem was recorded.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T, ConfigError> {
        self.finish()?;
        value.ok_or_else(|| ConfigError {
            problems: vec![ConfigProblem {
                variable: "(configuration)".into(),
                source: None,
                problem: "a required value is missing".into(),
            }],
        })
    }

    /// Ends reading: every problem at once, or none.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// A JSON configuration document, whole: the error names the path of the bad field, and text
/// after the document (`{...}{...}`) is an error, not silently ignored.
pub fn parse_json_document<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, JsonDocumentError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| JsonDocumentError {
        path: e.path().to_string(),
        problem: e.inner().to_string(),
    })?;
    de.end().map_err(|e| JsonDocumentError {
        path: ".".into(),
        problem: format!("unexpected text after the document: {e}"),
    })?;
    Ok(value)
}

/// Where a JSON configuration document is wrong (`path` as serde_path_to_error gives it; `.`
/// for the document as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonDocumentError {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for JsonDocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.as_str() {
            "." | "" => f.write_str(&self.problem),
            path => write!(f, "{path}: {}", self.problem),
        }
    }
}

/// Why a set variable has no usable text.
enum Raw {
    Problem(&'static str),
    Reported,
}

fn parse_flag(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// Settings every function shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// `DRY_RUN`: plan, log and return the plan; make no mutating call.
    pub dry_run: bool,
    /// `STATE_TABLE_NAME`: the DynamoDB table for idempotency claims, cooldowns and locks.
    pub state_table: String,
    /// `IDEMPOTENCY_TTL_SECONDS`: how long a completed claim is remembered (default one day; at
    /// least 900 s, the longest Lambda timeout, so a claim never expires while its owner runs).
    pub idempotency_ttl: Duration,
}

impl CommonConfig {
    pub const DRY_RUN: &'static str = "DRY_RUN";
    pub const STATE_TABLE_NAME: &'static str = "STATE_TABLE_NAME";
    pub const IDEMPOTENCY_TTL_SECONDS: &'static str = "IDEMPOTENCY_TTL_SECONDS";

    /// Reads the shared settings; problems are left in `env` for [`Env::finish`].
    pub fn read(env: &mut Env) -> Option<Self> {
        let dry_run = env.flag(Self::DRY_RUN, false);
        let state_table = env.required::<String>(Self::STATE_TABLE_NAME);
        let idempotency_ttl = env.seconds(
            Self::IDEMPOTENCY_TTL_SECONDS,
            Duration::from_secs(24 * 3600),
            900,
            366 * 24 * 3600,
        );
        Some(Self {
            dry_run,
            state_table: state_table?,
            idempotency_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_at_once() {
        let mut env = Env::from_map([("DRY_RUN", "maybe"), ("IDEMPOTENCY_TTL_SECONDS", "-3")]);
        assert!(CommonConfig::read(&mut env).is_none());
        let err = env.finish().unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            vars,
            ["DRY_RUN", "STATE_TABLE_NAME", "IDEMPOTENCY_TTL_SECONDS"]
        );
        let text = err.to_string();
        assert!(text.contains("3 problems"), "{text}");
        assert!(text.contains("DRY_RUN: expected true or false"), "{text}");
        let mut env = Env::from_map([("STATE_TABLE_NAME", "t"), ("IDEMPOTENCY_TTL_SECONDS", "60")]);
        CommonConfig::read(&mut env);
        let text = env.finish().unwrap_err().to_string();
        assert!(
            text.contains("IDEMPOTENCY_TTL_SECONDS: 60 is outside 900..="),
            "{text}"
        );
    }

    #[test]
    fn reads_a_valid_configuration() {
        let mut env = Env::from_map([("DRY_RUN", "TRUE"), ("STATE_TABLE_NAME", "state")]);
        let c = CommonConfig::read(&mut env).unwrap();
        env.finish().unwrap();
        assert!(c.dry_run);
        assert_eq!(c.state_table, "state");
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn a_value_that_is_not_utf8_is_a_problem_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let bad = std::ffi::OsString::from_vec(vec![0x66, 0x6f, 0xff]);
        let mut env = Env::from_os([
            ("STATE_TABLE_NAME".into(), bad.clone()),
            ("UNRELATED".into(), bad),
        ]);
        assert!(CommonConfig::read(&mut env).is_none());
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].variable, "STATE_TABLE_NAME");
        assert_eq!(err.problems[0].problem, "not valid UTF-8");
    }

    #[test]
    fn a_json_document_with_trailing_text_is_rejected() {
        let e =
            parse_json_document::<serde_json::Value>(r#"{"rules": []}{"rules": [1]}"#).unwrap_err();
        assert!(
            e.problem.contains("unexpected text after the document"),
            "{e}"
        );
        assert!(parse_json_document::<serde_json::Value>(" {\"a\": 1}\n").is_ok());
    }

    #[test]
    fn blank_counts_as_unset() {
        let mut env = Env::from_map([("STATE_TABLE_NAME", "  ")]);
        assert!(CommonConfig::read(&mut env).is_none());
        assert_eq!(env.finish().unwrap_err().problems.len(), 1);
    }
}
