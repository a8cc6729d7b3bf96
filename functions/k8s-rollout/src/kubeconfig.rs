//! A cluster's endpoint, CA and credential, and the kubeconfig files they may come from.
//!
//! The roller builds its Kubernetes client itself ([`crate::connect::client`]) rather than through
//! kube's `Config`: kube's kubeconfig support (a YAML parser, exec plugins, auth providers and
//! their JSONPath and regex engines) was over 1 MB of the function's binary, and none of it can
//! run under Lambda anyway (no `aws` or `gcloud` binary to exec). So a kubeconfig file is read
//! here, as JSON (`kubectl config view --raw --flatten -o json` writes one; kubectl reads it
//! too), and it must carry what works without external tools: the server, its CA, and a bearer
//! token or a client certificate.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A client certificate: PEM of the chain and of its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub chain: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate(..)")
    }
}

/// How a client proves who it is: a bearer token, a client certificate, or both (as kubectl
/// sends both when a kubeconfig user has both).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub token: Option<String>,
    pub certificate: Option<ClientCertificate>,
}

impl Credential {
    pub fn token(token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            certificate: None,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("Credential")
            .field("token", &self.token.as_ref().map(|_| ".."))
            .field("certificate", &self.certificate.as_ref().map(|_| ".."))
            .finish()
    }
}

/// Everything needed to reach one cluster's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host[:port]`.
    pub server: String,
    /// PEM of the CA certificates that may sign the server's certificate.
    pub ca_pem: Vec<u8>,
    pub credential: Credential,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Debug, Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<String>,
    #[serde(rename = "proxy-url")]
    proxy_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UserEntry {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    #[serde(rename = "client-certificate")]
    cert_file: Option<String>,
    #[serde(rename = "client-key")]
    key_file: Option<String>,
    exec: Option<serde::de::IgnoredAny>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

const CONVERT: &str = "kubeconfig files are read as JSON: write one with `kubectl config view --kubeconfig FILE --raw --flatten -o json`";

/// Reads `path` and the context `context` (its current context when `None`).
pub fn read(path: &str, context: Option<&str>) -> Result<Endpoint, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let base = Path::new(path).parent().unwrap_or(Path::new(""));
    parse(&text, context, base).map_err(|e| format!("{path}: {e}"))
}

/// Parses a kubeconfig's text; relative file names in it are read from `base`, the directory of
/// the file, as kubectl reads them.
pub fn parse(text: &str, context: Option<&str>, base: &Path) -> Result<Endpoint, String> {
    if !text.trim_start().starts_with('{') {
        return Err(CONVERT.into());
    }
    let file: File = serde_json::from_str(text).map_err(|e| format!("{e}; {CONVERT}"))?;
    let name = context
        .map(str::to_string)
        .or(file.current_context.clone())
        .filter(|c| !c.is_empty())
        .ok_or("no context given and no current-context")?;
    let ctx = find(&file.contexts, &name, "context")?;
    let cluster = find(&file.clusters, &ctx.cluster, "cluster")?;
    let user = find(&file.users, &ctx.user, "user")?;

    if cluster.insecure {
        return Err(format!(
            "cluster {:?}: insecure-skip-tls-verify is refused: give its CA",
            ctx.cluster
        ));
    }
    for (field, given) in [
        ("tls-server-name", &cluster.tls_server_name),
        ("proxy-url", &cluster.proxy_url),
    ] {
        if given.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(format!(
                "cluster {:?}: {field} is not supported",
                ctx.cluster
            ));
        }
    }
    if !cluster.server.starts_with("https://") {
        return Err(format!(
            "cluster {:?}: the server must be https://, got {:?}",
            ctx.cluster, cluster.server
        ));
    }
    let ca_pem = data_or_file(cluster.ca_data.as_deref(), cluster.ca_file.as_deref(), base)
        .map_err(|e| format!("cluster {:?}: certificate-authority: {e}", ctx.cluster))?
        .ok_or_else(|| {
            format!(
                "cluster {:?}: needs certificate-authority-data or certificate-authority",
                ctx.cluster
            )
        })?;

    let at = |what: &str, e: String| format!("user {:?}: {what}: {e}", ctx.user);
    let token = match (&user.token, &user.token_file) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(file)) => Some(
            std::fs::read_to_string(resolve(file, base))
                .map_err(|e| at("tokenFile", e.to_string()))?
                .trim()
                .to_string(),
        ),
        _ => None,
    };
    let chain = data_or_file(user.cert_data.as_deref(), user.cert_file.as_deref(), base)
        .map_err(|e| at("client-certificate", e))?;
    let key = data_or_file(user.key_data.as_deref(), user.key_file.as_deref(), base)
        .map_err(|e| at("client-key", e))?;
    let certificate = match (chain, key) {
        (Some(chain), Some(key)) => Some(ClientCertificate { chain, key }),
        (None, None) => None,
        _ => {
            return Err(format!(
                "user {:?}: a client certificate needs its key and the key its certificate",
                ctx.user
            ));
        }
    };
    if token.is_none() && certificate.is_none() {
        let external = if user.exec.is_some() || user.auth_provider.is_some() {
            " (exec plugins and auth providers are not run)"
        } else {
            ""
        };
        return Err(format!(
            "user {:?}: needs a token, a tokenFile or a client certificate{external}",
            ctx.user
        ));
    }
    let credential = Credential { token, certificate };
    Ok(Endpoint {
        server: cluster.server.clone(),
        ca_pem,
        credential,
    })
}

fn find<'a, T>(entries: &'a [Named<T>], name: &str, what: &str) -> Result<&'a T, String> {
    entries
        .iter()
        .find(|e| e.name == name)
        .map(|e| &e.value)
        .ok_or_else(|| format!("no {what} named {name:?}"))
}

fn resolve(file: &str, base: &Path) -> PathBuf {
    let path = Path::new(file);
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Inline base64 data, else the named file, else nothing.
fn data_or_file(
    data: Option<&str>,
    file: Option<&str>,
    base: &Path,
) -> Result<Option<Vec<u8>>, String> {
    match (
        data.filter(|d| !d.is_empty()),
        file.filter(|f| !f.is_empty()),
    ) {
        (Some(data), _) => STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| format!("not base64: {e}")),
        (None, Some(file)) => std::fs::read(resolve(file, base))
            .map(Some)
            .map_err(|e| format!("{file}: {e}")),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: &str, cluster_extra: &str) -> String {
        format!(
            r#"{{"apiVersion": "v1", "kind": "Config",
                "clusters": [{{"name": "lab", "cluster": {{"server": "https://lab.example:6443", "certificate-authority-data": "{ca}"{cluster_extra}}}}}],
                "users": [{{"name": "me", "user": {user}}}],
                "contexts": [{{"name": "lab", "context": {{"cluster": "lab", "user": "me", "namespace": "shop"}}}},
                             {{"name": "other", "context": {{"cluster": "nowhere", "user": "me"}}}}],
                "current-context": "lab", "preferences": {{}}}}"#,
            ca = STANDARD.encode("PEM CA")
        )
    }

    #[test]
    fn a_token_user_of_the_current_context() {
        let e = parse(&config(r#"{"token": "t0k"}"#, ""), None, Path::new("")).unwrap();
        assert_eq!(e.server, "https://lab.example:6443");
        assert_eq!(e.ca_pem, b"PEM CA");
        assert_eq!(e.credential, Credential::token("t0k"));
        let logged = format!("{:?}", e.credential);
        assert!(!logged.contains("t0k"), "no secret in logs: {logged}");
    }

    #[test]
    fn files_are_read_relative_to_the_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("k8s-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "from-file\n").unwrap();
        std::fs::write(dir.join("cert.pem"), "CERT").unwrap();
        std::fs::write(dir.join("key.pem"), "KEY").unwrap();
        let e = parse(&config(r#"{"tokenFile": "token"}"#, ""), None, &dir).unwrap();
        assert_eq!(e.credential, Credential::token("from-file"));
        let e = parse(
            &config(
                r#"{"client-certificate": "cert.pem", "client-key": "key.pem"}"#,
                "",
            ),
            Some("lab"),
            &dir,
        )
        .unwrap();
        let certificate = Some(ClientCertificate {
            chain: b"CERT".to_vec(),
            key: b"KEY".to_vec(),
        });
        assert_eq!(
            e.credential,
            Credential {
                token: None,
                certificate: certificate.clone()
            }
        );
        // Both, as kubectl sends both.
        let e = parse(
            &config(
                r#"{"token": "t", "client-certificate": "cert.pem", "client-key": "key.pem"}"#,
                "",
            ),
            None,
            &dir,
        )
        .unwrap();
        assert_eq!(e.credential.token.as_deref(), Some("t"));
        assert_eq!(e.credential.certificate, certificate);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn what_cannot_work_is_an_error_that_says_why() {
        let base = Path::new("");
        let cases = [
            (
                "apiVersion: v1\nkind: Config\n".to_string(),
                None,
                "read as JSON",
            ),
            (
                config(r#"{"exec": {"command": "aws"}}"#, ""),
                None,
                "exec plugins and auth providers are not run",
            ),
            (
                config(r#"{"client-certificate-data": "Q0VSVA=="}"#, ""),
                None,
                "needs its key",
            ),
            (
                config(r#"{"token": "t"}"#, r#", "insecure-skip-tls-verify": true"#),
                None,
                "insecure-skip-tls-verify is refused",
            ),
            (
                config(r#"{"token": "t"}"#, ""),
                Some("other"),
                "no cluster named \"nowhere\"",
            ),
            (
                config(r#"{"token": "t"}"#, ""),
                Some("gone"),
                "no context named \"gone\"",
            ),
        ];
        for (text, context, expected) in cases {
            let e = parse(&text, context, base).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
        let plain = config(r#"{"token": "t"}"#, "").replace("https://lab", "http://lab");
        assert!(
            parse(&plain, None, base)
                .unwrap_err()
                .contains("must be https://")
        );
    }
}
