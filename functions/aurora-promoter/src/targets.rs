//! The targets document (`PROMOTION_TARGETS`): which alarms stand for which database, and how
//! that database is promoted.
//!
//! Parsed and validated once at cold start; unknown fields are errors (a misspelt
//! `alowDataLoss` must not silently mean "no").

use std::collections::BTreeSet;

use autonomic::glob::Glob;
use serde::{Deserialize, Serialize};

/// The alarm tag that names a target directly (tag propagation on EventBridge alarm events).
pub const TARGET_TAG: &str = "autonomic:promotion-target";

/// Route 53's checkers: a promotion needs at least this many reporting failure, whatever the
/// share, so one checker's bad network never promotes a database.
pub const MIN_FAILING_CHECKERS: usize = 2;

fn default_share() -> f64 {
    0.5
}

fn default_cooldown() -> u64 {
    1800
}

fn default_ttl() -> i64 {
    30
}

/// In-Region: `FailoverDBCluster` to the best reader.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    pub identifier: String,
    pub region: String,
    /// Readers to prefer, best first; the others follow by promotion tier.
    #[serde(default)]
    pub reader_priority: Vec<String>,
    /// Availability Zones to prefer among readers of equal tier; unset, a reader outside the
    /// failed writer's zone is preferred (a zone outage is the common cause).
    #[serde(default)]
    pub preferred_availability_zones: Vec<String>,
}

/// An Aurora Global Database: `SwitchoverGlobalCluster`, or `FailoverGlobalCluster` with data loss
/// when allowed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalSpec {
    pub global_cluster_identifier: String,
    /// The Regions of its clusters, in the order secondaries are preferred as the new primary.
    pub regions: Vec<String>,
    /// Fail over (with possible loss of writes not yet replicated) when the primary's Region does
    /// not answer. Off unless set.
    #[serde(default)]
    pub allow_data_loss: bool,
    /// The most replication lag (seconds) a failover may lose; required with `allowDataLoss`.
    #[serde(default)]
    pub rpo_ceiling_seconds: Option<f64>,
    /// The member cluster of each Region (Region → identifier). infra/ scopes the promotion
    /// permissions to them; when given, no other member is ever chosen.
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, String>,
}

/// An Aurora MySQL cross-Region read replica cluster: `PromoteReadReplicaDBCluster`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaSpec {
    pub identifier: String,
    pub region: String,
}

/// A CNAME pointed at the new writer once the promotion has completed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSpec {
    pub hosted_zone_id: String,
    pub name: String,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
}

/// One target as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    pub name: String,
    /// Alarm names or globs (`orders-db-health*`); an alarm may also name the target with the tag
    /// `autonomic:promotion-target`.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// The health check to confirm with; unset, the alarm's `HealthCheckId` dimension.
    #[serde(default)]
    pub health_check_id: Option<String>,
    /// The share of Route 53's checkers that must report failure (and at least two of them).
    #[serde(default = "default_share")]
    pub min_failing_share: f64,
    /// After a promotion request, no other for the same cluster for this long (seconds).
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u64,
    #[serde(default)]
    pub cluster: Option<ClusterSpec>,
    #[serde(default)]
    pub global: Option<GlobalSpec>,
    #[serde(default)]
    pub read_replica: Option<ReplicaSpec>,
    #[serde(default)]
    pub record: Option<RecordSpec>,
}

/// How a target is promoted.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Cluster(ClusterSpec),
    Global(GlobalSpec),
    ReadReplica(ReplicaSpec),
}

/// One target, checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: TargetSpec,
    pub kind: Kind,
    alarms: Vec<Glob>,
}

impl Target {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the alarm named `alarm`, with `tags`, stands for this target.
    pub fn takes(&self, alarm: &str, tags: &std::collections::BTreeMap<String, String>) -> bool {
        tags.get(TARGET_TAG).is_some_and(|t| t == &self.spec.name)
            || self.alarms.iter().any(|g| g.is_match(alarm))
    }

    /// The cluster (or global cluster) a promotion acts on: the lease that keeps two promotions
    /// of it apart, whichever target or Region asks.
    pub fn resource(&self) -> String {
        match &self.kind {
            Kind::Cluster(c) => format!("cluster#{}#{}", c.region, c.identifier),
            Kind::Global(g) => format!("global#{}", g.global_cluster_identifier),
            Kind::ReadReplica(r) => format!("cluster#{}#{}", r.region, r.identifier),
        }
    }

    /// The Regions this target's clusters are in.
    pub fn regions(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Cluster(c) => vec![c.region.as_str()],
            Kind::Global(g) => g.regions.iter().map(String::as_str).collect(),
            Kind::ReadReplica(r) => vec![r.region.as_str()],
        }
    }

    /// The cluster identifiers the configuration names (RDS events are matched on them): a
    /// global database's own and those of the member clusters it lists.
    pub fn identifiers(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Cluster(c) => vec![c.identifier.as_str()],
            Kind::Global(g) => std::iter::once(g.global_cluster_identifier.as_str())
                .chain(g.clusters.values().map(String::as_str))
                .collect(),
            Kind::ReadReplica(r) => vec![r.identifier.as_str()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    targets: Vec<TargetSpec>,
}

/// The whole document.
#[derive(Debug, Clone)]
pub struct Targets {
    pub targets: Vec<Target>,
}

/// `us-east-1`, `eu-central-2`, `cn-north-1`, `us-gov-west-1`: letters and digits in dashed parts.
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// RDS identifiers: a letter, then letters, digits and single hyphens, at most 63 (255 for
/// global clusters); RDS compares them case-insensitively.
fn valid_identifier(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
}

impl Targets {
    /// Parses and checks the document, naming the target and field of every problem.
    pub fn parse(text: &str) -> Result<Targets, String> {
        let doc: Document =
            autonomic::config::parse_json_document(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        let mut targets = Vec::with_capacity(doc.targets.len());
        if doc.targets.is_empty() {
            problems.push("targets: at least one target is required".to_string());
        }
        for (i, spec) in doc.targets.into_iter().enumerate() {
            let at = format!("targets[{i}] ({:?})", spec.name);
            let mut bad =
                |field: &str, problem: String| problems.push(format!("{at}.{field}: {problem}"));
            if spec.name.is_empty() || spec.name.contains('#') {
                bad("name", "must be non-empty and without '#'".into());
            }
            if !names.insert(spec.name.clone()) {
                bad("name", "another target has this name".into());
            }
            if !(spec.min_failing_share > 0.0 && spec.min_failing_share <= 1.0) {
                bad(
                    "minFailingShare",
                    format!("{} is not in (0, 1]", spec.min_failing_share),
                );
            }
            if spec.cooldown_seconds == 0 || spec.cooldown_seconds > 7 * 86_400 {
                bad("cooldownSeconds", "must be 1 to 604800".into());
            }
            if let Some(id) = &spec.health_check_id
                && id.trim().is_empty()
            {
                bad("healthCheckId", "must not be empty".into());
            }
            let mut alarms = Vec::new();
            for (j, a) in spec.alarms.iter().enumerate() {
                match Glob::new(a) {
                    Ok(g) if !a.is_empty() => alarms.push(g),
                    Ok(_) => bad(&format!("alarms[{j}]"), "must not be empty".into()),
                    Err(e) => bad(&format!("alarms[{j}]"), e),
                }
            }
            if let Some(r) = &spec.record {
                if r.hosted_zone_id.is_empty() || r.name.is_empty() {
                    bad("record", "hostedZoneId and name are required".into());
                }
                if !(1..=86_400).contains(&r.ttl) {
                    bad("record.ttl", "must be 1 to 86400".into());
                }
            }
            let kind = match (
                spec.cluster.clone(),
                spec.global.clone(),
                spec.read_replica.clone(),
            ) {
                (Some(c), None, None) => {
                    if !valid_identifier(&c.identifier, 63) {
                        bad(
                            "cluster.identifier",
                            format!("{:?} is not an RDS identifier", c.identifier),
                        );
                    }
                    if !valid_region(&c.region) {
                        bad("cluster.region", format!("{:?} is not a Region", c.region));
                    }
                    Some(Kind::Cluster(c))
                }
                (None, Some(g), None) => {
                    if !valid_identifier(&g.global_cluster_identifier, 255) {
                        bad(
                            "global.globalClusterIdentifier",
                            format!("{:?} is not an RDS identifier", g.global_cluster_identifier),
                        );
                    }
                    if g.regions.len() < 2 {
                        bad(
                            "global.regions",
                            "a global database spans at least two Regions".into(),
                        );
                    }
                    let mut seen = BTreeSet::new();
                    for r in &g.regions {
                        if !valid_region(r) {
                            bad("global.regions", format!("{r:?} is not a Region"));
                        }
                        if !seen.insert(r) {
                            bad("global.regions", format!("{r} is named twice"));
                        }
                    }
                    for (region, cluster) in &g.clusters {
                        if !g.regions.contains(region) {
                            bad("global.clusters", format!("{region} is not one of regions"));
                        }
                        if !valid_identifier(cluster, 63) {
                            bad(
                                "global.clusters",
                                format!("{cluster:?} is not an RDS identifier"),
                            );
                        }
                    }
                    match (g.allow_data_loss, g.rpo_ceiling_seconds) {
                        (true, None) => bad(
                            "global.rpoCeilingSeconds",
                            "required when allowDataLoss is true: the most lag a failover may lose"
                                .into(),
                        ),
                        (_, Some(s)) if !(s > 0.0 && s.is_finite()) => bad(
                            "global.rpoCeilingSeconds",
                            format!("{s} must be a positive number of seconds"),
                        ),
                        _ => {}
                    }
                    Some(Kind::Global(g))
                }
                (None, None, Some(r)) => {
                    if !valid_identifier(&r.identifier, 63) {
                        bad(
                            "readReplica.identifier",
                            format!("{:?} is not an RDS identifier", r.identifier),
                        );
                    }
                    if !valid_region(&r.region) {
                        bad(
                            "readReplica.region",
                            format!("{:?} is not a Region", r.region),
                        );
                    }
                    Some(Kind::ReadReplica(r))
                }
                _ => {
                    bad(
                        "",
                        "exactly one of cluster, global or readReplica is required".into(),
                    );
                    None
                }
            };
            if let Some(kind) = kind {
                targets.push(Target { spec, kind, alarms });
            }
        }
        // A cluster target on a member of a global target: one outage could fail it over in its
        // Region and switch the global database over too.
        let members: BTreeSet<(String, String)> = targets
            .iter()
            .filter_map(|t| match &t.kind {
                Kind::Global(g) => Some(g.clusters.clone()),
                _ => None,
            })
            .flatten()
            .map(|(r, c)| (r, c.to_ascii_lowercase()))
            .collect();
        for t in &targets {
            let (region, identifier) = match &t.kind {
                Kind::Cluster(c) => (&c.region, &c.identifier),
                Kind::ReadReplica(r) => (&r.region, &r.identifier),
                Kind::Global(_) => continue,
            };
            if members.contains(&(region.clone(), identifier.to_ascii_lowercase())) {
                problems.push(format!(
                    "targets ({:?}): {identifier} in {region} is a member of a global target's clusters",
                    t.spec.name
                ));
            }
        }
        // Two targets acting on one cluster would each trip only their own breaker.
        let mut resources = BTreeSet::new();
        for t in &targets {
            if !resources.insert(t.resource()) {
                problems.push(format!(
                    "targets ({:?}): another target promotes the same cluster ({})",
                    t.spec.name,
                    t.resource()
                ));
            }
        }
        if problems.is_empty() {
            Ok(Targets { targets })
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every Region a target names: the function builds an RDS and a CloudWatch client for each.
    pub fn regions(&self) -> BTreeSet<String> {
        self.targets
            .iter()
            .flat_map(|t| t.regions())
            .map(str::to_string)
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.spec.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_problem() {
        let e = Targets::parse(
            r#"{"targets": [
                {"name": "a", "global": {"globalClusterIdentifier": "orders", "regions": ["us-east-1"], "allowDataLoss": true}},
                {"name": "a", "cluster": {"identifier": "9bad", "region": "mars"}, "minFailingShare": 0},
                {"name": "c", "cluster": {"identifier": "x", "region": "us-east-1"}, "readReplica": {"identifier": "y", "region": "us-east-1"}}
            ]}"#,
        )
        .unwrap_err();
        for want in [
            "targets[0] (\"a\").global.regions: a global database spans at least two Regions",
            "global.rpoCeilingSeconds: required when allowDataLoss",
            "targets[1] (\"a\").name: another target has this name",
            "minFailingShare: 0 is not in (0, 1]",
            "cluster.identifier: \"9bad\" is not an RDS identifier",
            "cluster.region: \"mars\" is not a Region",
            "targets[2] (\"c\").: exactly one of cluster, global or readReplica",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
    }

    #[test]
    fn a_misspelt_field_is_an_error() {
        let e = Targets::parse(
            r#"{"targets": [{"name": "a", "global": {"globalClusterIdentifier": "g", "regions": ["us-east-1", "us-west-2"], "alowDataLoss": true}}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("alowDataLoss"), "{e}");
    }

    #[test]
    fn a_cluster_target_on_a_global_member_is_refused() {
        let e = Targets::parse(
            r#"{"targets": [
                {"name": "g", "global": {"globalClusterIdentifier": "orders", "regions": ["us-east-1", "us-west-2"],
                 "clusters": {"us-east-1": "orders-east", "us-west-2": "orders-west"}}},
                {"name": "c", "cluster": {"identifier": "Orders-East", "region": "us-east-1"}}
            ]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("is a member of a global target's clusters"),
            "{e}"
        );
    }

    #[test]
    fn two_targets_on_one_cluster_are_refused() {
        let e = Targets::parse(
            r#"{"targets": [
                {"name": "a", "cluster": {"identifier": "orders", "region": "us-east-1"}},
                {"name": "b", "cluster": {"identifier": "orders", "region": "us-east-1"}}
            ]}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("another target promotes the same cluster"),
            "{e}"
        );
    }

    #[test]
    fn alarms_match_by_glob_or_tag() {
        let t = Targets::parse(
            r#"{"targets": [{"name": "orders", "alarms": ["orders-db-*"], "cluster": {"identifier": "orders", "region": "us-east-1"}}]}"#,
        )
        .unwrap();
        let t = &t.targets[0];
        let none = Default::default();
        assert!(t.takes("orders-db-health", &none));
        assert!(!t.takes("billing-db-health", &none));
        let tags = [(TARGET_TAG.to_string(), "orders".to_string())].into();
        assert!(t.takes("anything", &tags));
    }
}
