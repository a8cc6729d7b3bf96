//! Domain name → distribution id, from ListDistributions, kept for the container's life and
//! listed again (once per batch at most) when a domain is not known.

use std::collections::HashMap;

use tokio::sync::Mutex;

use crate::api::CloudFrontApi;

/// The container's cache of distribution domain names.
#[derive(Debug, Default)]
pub struct DomainCache {
    domains: Mutex<Option<HashMap<String, String>>>,
}

/// One batch's use of the cache: ListDistributions is asked once per batch at most, so a
/// throttled API is not asked again for every message.
#[derive(Debug, Default)]
pub struct ListOnce {
    listed: bool,
    error: Option<String>,
}

/// Why a domain did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No distribution has it.
    Unknown(String),
    /// ListDistributions failed.
    ListFailed(String),
}

impl DomainCache {
    /// The distribution serving `domain`.
    pub async fn resolve(
        &self,
        api: &impl CloudFrontApi,
        once: &mut ListOnce,
        domain: &str,
    ) -> Result<String, LookupError> {
        let mut cache = self.domains.lock().await;
        if let Some(id) = cache.as_ref().and_then(|c| lookup(c, domain)) {
            return Ok(id);
        }
        // Unknown: list again, once per batch (a distribution may have been added since).
        if !once.listed {
            once.listed = true;
            match api.distribution_domains().await {
                Ok(listed) => {
                    *cache = Some(
                        listed
                            .into_iter()
                            .flat_map(|(id, domains)| {
                                domains.into_iter().map(move |d| (d, id.clone()))
                            })
                            .collect(),
                    );
                }
                Err(e) => once.error = Some(format!("could not list distributions: {e}")),
            }
        }
        if let Some(e) = &once.error {
            return Err(LookupError::ListFailed(e.clone()));
        }
        cache
            .as_ref()
            .and_then(|c| lookup(c, domain))
            .ok_or_else(|| {
                LookupError::Unknown(format!("no distribution has the domain name {domain:?}"))
            })
    }
}

/// The distribution serving `domain`: an exact alternate name, else a wildcard one
/// (`*.example.com` serves `static.example.com`).
fn lookup(domains: &HashMap<String, String>, domain: &str) -> Option<String> {
    domains.get(domain).cloned().or_else(|| {
        let (_, parent) = domain.split_once('.')?;
        domains.get(&format!("*.{parent}")).cloned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_resolve_exactly_then_by_wildcard() {
        let domains: HashMap<String, String> = [
            ("static.example.com".to_string(), "E1".to_string()),
            ("*.example.com".to_string(), "E2".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            lookup(&domains, "static.example.com").as_deref(),
            Some("E1")
        );
        assert_eq!(lookup(&domains, "img.example.com").as_deref(), Some("E2"));
        // A wildcard covers one label only.
        assert_eq!(lookup(&domains, "a.b.example.com"), None);
        assert_eq!(lookup(&domains, "example.org"), None);
    }
}
