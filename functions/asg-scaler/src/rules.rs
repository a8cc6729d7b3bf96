//! The scaling rules document (`SCALING_RULES`): which alarm scales which group, and how.
//!
//! Parsed and validated once at cold start. Unknown fields are errors (a misspelt `maxCapacity`
//! silently ignored would remove a bound), and every error names the rule and the field.

use std::collections::BTreeMap;

use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::glob::Glob;
use serde::{Deserialize, Serialize};

/// How a rule picks its alarms. Exactly one criterion per rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmMatch {
    /// The exact alarm name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An alarm name prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// A glob over the alarm name (`web-*-high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_glob: Option<String>,
    /// A propagated alarm tag (`alarmTags`) with this key, and this value if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagMatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagMatch {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One state's adjustment: `change` instances, or `percent` of the current desired capacity
/// (rounded away from zero, at least `minStep`). Positive scales out, negative scales in.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_step: Option<i32>,
}

impl Adjustment {
    /// The signed step for a group at `desired` (before the cap).
    pub fn step(&self, desired: i32) -> i32 {
        match (self.change, self.percent) {
            (Some(change), _) => change,
            (None, Some(percent)) => {
                let product = i64::from(desired.max(0)) * i64::from(percent.unsigned_abs());
                let magnitude = ((product + 99) / 100)
                    .max(i64::from(self.min_step.unwrap_or(1)))
                    .min(i64::from(i32::MAX)) as i32;
                if percent < 0 { -magnitude } else { magnitude }
            }
            (None, None) => 0,
        }
    }
}

/// Where a rule's group name comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GroupSource {
    /// Named in the rule.
    Named(String),
    /// The alarm's `AutoScalingGroupName` dimension.
    Dimension,
    /// A propagated alarm tag with this key.
    Tag(String),
}

/// One rule as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: AlarmMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_from_tag: Option<String>,
    pub on_alarm: Adjustment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_ok: Option<Adjustment>,
    /// The largest change one step may make, in instances.
    pub max_step: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<i32>,
    /// No second scaling of the group within this window (durable, across invocations).
    pub cooldown_seconds: u32,
    /// Passed to SetDesiredCapacity: let the group's own cooldown veto the change too.
    #[serde(default)]
    pub honor_cooldown: bool,
    /// Step again while the alarm stays in ALARM, once each cooldown ends, as a step scaling
    /// policy does (default true).
    #[serde(default = "default_true")]
    pub keep_stepping: bool,
}

fn default_true() -> bool {
    true
}

/// The longest cooldown a rule may set: a day. A longer one is a typo (seconds for
/// milliseconds), and it would also outlive the claims that guard its transitions.
pub const MAX_COOLDOWN_SECONDS: u32 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesDocument {
    rules: Vec<RuleSpec>,
}

/// A validated rule, ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub group: GroupSource,
    glob: Option<Glob>,
}

impl Rule {
    /// Whether this rule picks `t`.
    pub fn matches(&self, t: &AlarmTransition) -> bool {
        let m = &self.spec.matches;
        if let Some(name) = &m.name {
            return t.name == *name;
        }
        if let Some(prefix) = &m.name_prefix {
            return t.name.starts_with(prefix.as_str());
        }
        if let Some(glob) = &self.glob {
            return glob.is_match(&t.name);
        }
        if let Some(tag) = &m.tag {
            return match (t.tags.get(&tag.key), &tag.value) {
                (Some(v), Some(want)) => v == want,
                (Some(_), None) => true,
                (None, _) => false,
            };
        }
        false
    }

    /// The adjustment for a state, if the rule acts on it. INSUFFICIENT_DATA never acts.
    pub fn adjustment(&self, state: AlarmState) -> Option<Adjustment> {
        match state {
            AlarmState::Alarm => Some(self.spec.on_alarm),
            AlarmState::Ok => self.spec.on_ok,
            AlarmState::InsufficientData => None,
        }
    }
}

/// All the rules, in document order: the first rule that matches an alarm is its rule.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// A rules document problem; `at` names the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct RulesError {
    pub at: String,
    pub problem: String,
}

impl Rules {
    /// Parses and validates a rules document.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let doc: RulesDocument =
            autonomic::config::parse_json_document(text).map_err(|e| RulesError {
                at: match e.path.as_str() {
                    "." => "document".into(),
                    path => describe_path(text, path),
                },
                problem: e.problem,
            })?;
        if doc.rules.is_empty() {
            return Err(RulesError {
                at: "rules".into(),
                problem: "must name at least one rule".into(),
            });
        }
        let mut rules = Vec::with_capacity(doc.rules.len());
        let mut names = BTreeMap::new();
        for (i, spec) in doc.rules.into_iter().enumerate() {
            let at = |field: &str| format!("rules[{i}] ({:?}).{field}", spec.name);
            let bad = |field: &str, problem: String| RulesError {
                at: at(field),
                problem,
            };
            if spec.name.trim().is_empty() {
                return Err(bad("name", "must not be empty".into()));
            }
            if let Some(first) = names.insert(spec.name.clone(), i) {
                return Err(bad("name", format!("duplicates rules[{first}]")));
            }
            let m = &spec.matches;
            let criteria = [
                m.name.is_some(),
                m.name_prefix.is_some(),
                m.name_glob.is_some(),
                m.tag.is_some(),
            ]
            .iter()
            .filter(|c| **c)
            .count();
            if criteria != 1 {
                return Err(bad(
                    "match",
                    format!(
                        "needs exactly one of name, namePrefix, nameGlob, tag (has {criteria})"
                    ),
                ));
            }
            let glob = match &m.name_glob {
                Some(g) => Some(Glob::new(g).map_err(|e| bad("match.nameGlob", e))?),
                None => None,
            };
            let group = match (&spec.group, &spec.group_from_tag) {
                (Some(_), Some(_)) => {
                    return Err(bad("group", "give group or groupFromTag, not both".into()));
                }
                (Some(g), None) if g.trim().is_empty() => {
                    return Err(bad("group", "must not be empty".into()));
                }
                (Some(g), None) => GroupSource::Named(g.clone()),
                (None, Some(k)) if k.trim().is_empty() => {
                    return Err(bad("groupFromTag", "must not be empty".into()));
                }
                (None, Some(k)) => GroupSource::Tag(k.clone()),
                (None, None) => GroupSource::Dimension,
            };
            check_adjustment(&spec.on_alarm).map_err(|p| bad("onAlarm", p))?;
            if let Some(ok) = &spec.on_ok {
                check_adjustment(ok).map_err(|p| bad("onOk", p))?;
            }
            if spec.max_step < 1 {
                return Err(bad(
                    "maxStep",
                    format!("must be at least 1, got {}", spec.max_step),
                ));
            }
            if let Some(min) = spec.min_capacity
                && min < 0
            {
                return Err(bad(
                    "minCapacity",
                    format!("must not be negative, got {min}"),
                ));
            }
            if let Some(max) = spec.max_capacity
                && max < 0
            {
                return Err(bad(
                    "maxCapacity",
                    format!("must not be negative, got {max}"),
                ));
            }
            if spec.cooldown_seconds > MAX_COOLDOWN_SECONDS {
                return Err(bad(
                    "cooldownSeconds",
                    format!(
                        "{} is more than a day ({MAX_COOLDOWN_SECONDS})",
                        spec.cooldown_seconds
                    ),
                ));
            }
            if let (Some(min), Some(max)) = (spec.min_capacity, spec.max_capacity)
                && min > max
            {
                return Err(bad(
                    "maxCapacity",
                    format!("{max} is below minCapacity {min}"),
                ));
            }
            rules.push(Rule { spec, group, glob });
        }
        Ok(Rules { rules })
    }

    /// The first rule that matches `t`.
    pub fn find(&self, t: &AlarmTransition) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(t))
    }
}

fn check_adjustment(a: &Adjustment) -> Result<(), String> {
    match (a.change, a.percent) {
        (Some(_), Some(_)) => Err("give change or percent, not both".into()),
        (None, None) => Err("needs change or percent".into()),
        (Some(0), None) => Err("change must not be 0".into()),
        (None, Some(0)) => Err("percent must not be 0".into()),
        (Some(_), None) if a.min_step.is_some() => Err("minStep goes with percent only".into()),
        (None, Some(_)) if a.min_step.is_some_and(|s| s < 1) => {
            Err("minStep must be at least 1".into())
        }
        _ => Ok(()),
    }
}

/// `rules[2].onAlarm.change` → `rules[2] ("web-cpu").onAlarm.change`, naming the rule when the
/// document is well-formed enough to find its name.
fn describe_path(text: &str, path: &str) -> String {
    let Some(rest) = path.strip_prefix("rules[") else {
        return path.to_string();
    };
    let Some((index, field)) = rest.split_once(']') else {
        return path.to_string();
    };
    let name = index.parse::<usize>().ok().and_then(|i| {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        v["rules"][i]["name"].as_str().map(str::to_owned)
    });
    match name {
        Some(name) => format!("rules[{index}] ({name:?}){field}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"rules": [
        {"name": "web-cpu", "match": {"name": "web-cpu-high"}, "onAlarm": {"change": 2},
         "onOk": {"change": -1}, "maxStep": 4, "minCapacity": 2, "maxCapacity": 8,
         "cooldownSeconds": 300},
        {"name": "api", "match": {"tag": {"key": "team", "value": "payments"}},
         "groupFromTag": "autonomic:scale-group", "onAlarm": {"percent": 50, "minStep": 1},
         "maxStep": 10, "cooldownSeconds": 60, "honorCooldown": true}
    ]}"#;

    #[test]
    fn parses_a_valid_document() {
        let rules = Rules::parse(VALID).unwrap();
        assert_eq!(rules.rules.len(), 2);
        assert_eq!(rules.rules[0].group, GroupSource::Dimension);
        assert_eq!(
            rules.rules[1].group,
            GroupSource::Tag("autonomic:scale-group".into())
        );
    }

    fn err(doc: &str) -> String {
        Rules::parse(doc).unwrap_err().to_string()
    }

    #[test]
    fn a_wrong_type_names_the_rule_and_field() {
        let doc = VALID.replace(r#""change": 2"#, r#""change": "two""#);
        let e = err(&doc);
        assert!(
            e.starts_with(r#"rules[0] ("web-cpu").onAlarm.change: invalid type"#),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        let doc = VALID.replace(r#""maxCapacity": 8"#, r#""maxCapcity": 8"#);
        let e = err(&doc);
        assert!(
            e.contains(r#"rules[0] ("web-cpu")"#) && e.contains("maxCapcity"),
            "{e}"
        );
    }

    #[test]
    fn documents_that_can_never_work_are_rejected() {
        let cases = [
            (
                format!("{VALID}{{\"rules\": []}}"),
                "unexpected text after the document",
            ),
            (
                r#"{"rules": []}"#.to_string(),
                "rules: must name at least one rule",
            ),
            (
                VALID.replace(r#""maxCapacity": 8"#, r#""maxCapacity": -1"#),
                r#"rules[0] ("web-cpu").maxCapacity: must not be negative"#,
            ),
            (
                VALID.replace(r#""autonomic:scale-group""#, r#""  ""#),
                r#"rules[1] ("api").groupFromTag: must not be empty"#,
            ),
            (
                VALID.replace(
                    r#""cooldownSeconds": 300"#,
                    r#""cooldownSeconds": 4294967295"#,
                ),
                r#"rules[0] ("web-cpu").cooldownSeconds: 4294967295 is more than a day"#,
            ),
        ];
        for (doc, want) in cases {
            let e = err(&doc);
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        }
    }

    #[test]
    fn semantic_problems_name_the_rule_and_field() {
        let cases = [
            (
                VALID.replace(r#""change": 2"#, r#""change": 0"#),
                r#"rules[0] ("web-cpu").onAlarm: change must not be 0"#,
            ),
            (
                VALID.replace(r#""maxStep": 4"#, r#""maxStep": 0"#),
                r#"rules[0] ("web-cpu").maxStep"#,
            ),
            (
                VALID.replace(r#""minCapacity": 2"#, r#""minCapacity": 9"#),
                r#"rules[0] ("web-cpu").maxCapacity: 8 is below minCapacity 9"#,
            ),
            (
                VALID.replace(r#""name": "api""#, r#""name": "web-cpu""#),
                r#"rules[1] ("web-cpu").name: duplicates rules[0]"#,
            ),
            (
                VALID.replace(
                    r#"{"name": "web-cpu-high"}"#,
                    r#"{"name": "a", "namePrefix": "b"}"#,
                ),
                r#"rules[0] ("web-cpu").match: needs exactly one"#,
            ),
            (
                VALID
                    .replace(
                        r#""cooldownSeconds": 300"#,
                        r#""cooldownSeconds": 300, "group": "g""#,
                    )
                    .replace(r#""groupFromTag""#, r#""group": "x", "groupFromTag""#),
                r#"rules[1] ("api").group: give group or groupFromTag"#,
            ),
        ];
        for (doc, want) in cases {
            let e = err(&doc);
            assert!(e.starts_with(want), "want {want:?}\n got {e:?}");
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let doc = VALID.replace(r#""cooldownSeconds": 300"#, r#""honorCooldown": false"#);
        let e = err(&doc);
        assert!(e.contains("missing field `cooldownSeconds`"), "{e}");
        assert!(e.starts_with(r#"rules[0] ("web-cpu")"#), "{e}");
    }

    #[test]
    fn percent_steps_round_away_from_zero_with_a_minimum() {
        let a = Adjustment {
            change: None,
            percent: Some(50),
            min_step: Some(2),
        };
        assert_eq!(a.step(3), 2); // 1.5 → 2, and at least 2
        assert_eq!(a.step(9), 5); // 4.5 → 5
        let down = Adjustment {
            change: None,
            percent: Some(-25),
            min_step: None,
        };
        assert_eq!(down.step(10), -3); // 2.5 → 3
        assert_eq!(down.step(0), -1); // at least one
    }
}
