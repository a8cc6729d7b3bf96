//! The clusters document (`ROLLOUT_CLUSTERS`): which Kubernetes clusters to roll workloads on,
//! how to reach each, and the only namespaces it lists and patches there.
//!
//! Parsed and validated once at cold start; unknown fields are errors.

use std::collections::BTreeSet;

use autonomic::config::parse_json_document;
use serde::{Deserialize, Serialize};

/// An EKS cluster: endpoint and CA from `DescribeCluster`, a token minted from the function's role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EksSpec {
    /// The EKS cluster name.
    pub cluster: String,
    pub region: String,
    /// Overrides the endpoint DescribeCluster gives (a private proxy; the test stand-in).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Overrides the CA DescribeCluster gives: base64 of the PEM, as EKS gives it.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
}

/// A cluster reached through a kubeconfig file (local use, clusters outside EKS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// Our name for it: in audit records, claims and lease names. Defaults to the EKS name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub eks: Option<EksSpec>,
    /// A kubeconfig file's path.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; its current context when unset.
    #[serde(default)]
    pub context: Option<String>,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClustersDocument {
    clusters: Vec<ClusterSpec>,
}

/// How a cluster is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Access {
    Eks(EksSpec),
    Kubeconfig {
        path: String,
        context: Option<String>,
    },
}

/// A validated cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    pub name: String,
    pub access: Access,
    pub namespaces: Vec<String>,
}

impl Cluster {
    /// The EKS cluster and its Region, if it is one.
    pub fn eks(&self) -> Option<&EksSpec> {
        match &self.access {
            Access::Eks(e) => Some(e),
            Access::Kubeconfig { .. } => None,
        }
    }
}

/// Every cluster, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clusters {
    pub clusters: Vec<Cluster>,
}

/// A Kubernetes name (namespace): an RFC 1123 label.
fn valid_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Clusters {
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: ClustersDocument = parse_json_document(text).map_err(|e| e.to_string())?;
        if doc.clusters.is_empty() {
            return Err("clusters: must name at least one cluster".into());
        }
        let mut names = BTreeSet::new();
        let mut clusters = Vec::with_capacity(doc.clusters.len());
        for (i, spec) in doc.clusters.into_iter().enumerate() {
            let at = format!("clusters[{i}]");
            let access = match (spec.eks, spec.kubeconfig) {
                (Some(eks), None) => {
                    if spec.context.is_some() {
                        return Err(format!("{at}.context: only with kubeconfig"));
                    }
                    if eks.cluster.is_empty() || eks.region.is_empty() {
                        return Err(format!("{at}.eks: cluster and region must not be empty"));
                    }
                    if let Some(e) = &eks.endpoint
                        && !e.starts_with("https://")
                    {
                        return Err(format!("{at}.eks.endpoint: must be https://"));
                    }
                    Access::Eks(eks)
                }
                (None, Some(path)) => Access::Kubeconfig {
                    path,
                    context: spec.context,
                },
                _ => return Err(format!("{at}: needs exactly one of eks, kubeconfig")),
            };
            let name = match (&spec.name, &access) {
                (Some(n), _) => n.clone(),
                (None, Access::Eks(e)) => e.cluster.clone(),
                (None, Access::Kubeconfig { .. }) => {
                    return Err(format!("{at}.name: required with kubeconfig"));
                }
            };
            if !valid_label(&name) {
                return Err(format!(
                    "{at}.name: {name:?} must be lowercase letters, digits and '-' (it names leases and claims)"
                ));
            }
            if !names.insert(name.clone()) {
                return Err(format!("{at}.name: {name:?} is named twice"));
            }
            if spec.namespaces.is_empty() {
                return Err(format!(
                    "{at}.namespaces: must name at least one namespace (it never lists the whole cluster)"
                ));
            }
            if let Some(bad) = spec.namespaces.iter().find(|n| !valid_label(n)) {
                return Err(format!("{at}.namespaces: {bad:?} is not a namespace name"));
            }
            let mut namespaces = spec.namespaces;
            namespaces.sort();
            namespaces.dedup();
            clusters.push(Cluster {
                name,
                access,
                namespaces,
            });
        }
        Ok(Self { clusters })
    }

    /// The Regions of the EKS clusters (an EKS client each).
    pub fn eks_regions(&self) -> BTreeSet<String> {
        self.clusters
            .iter()
            .filter_map(|c| c.eks().map(|e| e.region.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        let c = Clusters::parse(
            r#"{"clusters": [
                {"eks": {"cluster": "prod", "region": "eu-west-1"}, "namespaces": ["web", "api", "web"]},
                {"name": "local", "kubeconfig": "/tmp/k", "context": "kind", "namespaces": ["shop"]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(c.clusters[0].name, "prod");
        assert_eq!(c.clusters[0].namespaces, ["api", "web"]);
        assert_eq!(c.clusters[1].name, "local");
        assert!(
            matches!(&c.clusters[1].access, Access::Kubeconfig { context: Some(x), .. } if x == "kind")
        );
        assert_eq!(
            c.eks_regions().into_iter().collect::<Vec<_>>(),
            ["eu-west-1"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_act_on_safely() {
        for (doc, want) in [
            (r#"{"clusters": []}"#, "at least one cluster"),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r"}, "namespaces": []}]}"#,
                "at least one namespace",
            ),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r"}, "kubeconfig": "k", "namespaces": ["a"]}]}"#,
                "exactly one of",
            ),
            (
                r#"{"clusters": [{"kubeconfig": "k", "namespaces": ["a"]}]}"#,
                "name: required",
            ),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r"}, "namespaces": ["Web"]}]}"#,
                "not a namespace",
            ),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r", "endpoint": "http://x"}, "namespaces": ["a"]}]}"#,
                "https",
            ),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r"}, "namespaces": ["a"]}, {"eks": {"cluster": "a", "region": "s"}, "namespaces": ["a"]}]}"#,
                "named twice",
            ),
            (
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r", "roleArn": "x"}, "namespaces": ["a"]}]}"#,
                "unknown field",
            ),
        ] {
            let e = Clusters::parse(doc).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
    }
}
