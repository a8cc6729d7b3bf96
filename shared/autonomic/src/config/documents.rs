//! Configuration documents given inline or by reference.
//!
//! Lambda caps a function's whole environment at 4 KB, and a real estate's rules outgrow it. So a
//! document variable (`SCALING_RULES`, `BUCKET_DISTRIBUTIONS`, ...) holds either the JSON itself
//! or where to read it, once, at cold start:
//!
//! - `{...}` or `[...]`: the document, inline;
//! - `file:PATH`: a file in the deployment package (a relative path is read from
//!   `LAMBDA_TASK_ROOT`, `/var/task` under Lambda, or the working directory outside it);
//! - `ssm:NAME`: an SSM parameter by name or ARN (`String` or `SecureString`, decrypted; an
//!   advanced parameter holds up to 8 KB);
//! - `s3://BUCKET/KEY`: an S3 object (any size up to [`MAX_DOCUMENT_BYTES`]).
//!
//! A document read by reference is validated exactly as an inline one, and every problem names
//! where the document came from.

use std::path::{Path, PathBuf};

use aws_config::SdkConfig;

use super::Env;
use crate::error::{CallError, ErrorClass, FunctionError};

/// The largest document read from a file or an object: far above any real configuration, far
/// below memory.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// Where a document variable says its document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    Inline,
    File(PathBuf),
    Ssm(String),
    S3 { bucket: String, key: String },
}

impl DocumentSource {
    /// Reads a variable's value: JSON, `file:PATH`, `ssm:NAME` or `s3://BUCKET/KEY`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.starts_with('{') || value.starts_with('[') {
            return Ok(Self::Inline);
        }
        if let Some(path) = value.strip_prefix("file:") {
            let path = path.trim();
            if path.is_empty() {
                return Err("file: needs a path".into());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(name) = value.strip_prefix("ssm:") {
            let name = name.trim();
            let valid = |c: char| c.is_ascii_alphanumeric() || "_.-/:".contains(c);
            if name.is_empty() || !name.chars().all(valid) {
                return Err(format!(
                    "ssm: needs a parameter name or ARN ([A-Za-z0-9_.-/:]), got {name:?}"
                ));
            }
            return Ok(Self::Ssm(name.to_string()));
        }
        if let Some(rest) = value.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }),
                _ => Err(format!(
                    "s3:// needs a bucket and a key (s3://BUCKET/KEY), got {value:?}"
                )),
            };
        }
        let start: String = value.chars().take(24).collect();
        Err(format!(
            "expected a JSON document, file:PATH, ssm:NAME or s3://BUCKET/KEY, got {start:?}"
        ))
    }

    /// How problems name the source (`SCALING_RULES (from SSM parameter /x)`).
    pub fn describe(&self) -> Option<String> {
        match self {
            Self::Inline => None,
            Self::File(path) => Some(format!("file {}", path.display())),
            Self::Ssm(name) => Some(format!("SSM parameter {name}")),
            Self::S3 { bucket, key } => Some(format!("S3 object s3://{bucket}/{key}")),
        }
    }
}

/// A relative `file:` path is read from the package root.
fn resolve_path(path: &Path, task_root: Option<&str>) -> PathBuf {
    match task_root {
        Some(root) if path.is_relative() && !root.is_empty() => Path::new(root).join(path),
        _ => path.to_path_buf(),
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    // Not a device, a FIFO or /proc: their reported length says nothing about what they yield.
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let too_large = || format!("is larger than the {MAX_DOCUMENT_BYTES} bytes a document may have");
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DOCUMENT_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// Codes with which SSM or S3 says the reference (or the role's right to it) is wrong: a
/// configuration problem, not a passing fault.
const CONFIG_CODES: &[&str] = &[
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "AccessDeniedException",
    "ValidationException",
    "InvalidKeyId",
    "NoSuchKey",
    "NoSuchBucket",
    "AccessDenied",
    "InvalidObjectState",
];

/// A fault on the way fails the cold start as retryable; a wrong reference is a problem.
fn problem_or_fault(e: CallError) -> Result<String, FunctionError> {
    if e.class == ErrorClass::Retryable {
        return Err(FunctionError::Call(e));
    }
    Ok(format!("{}: {}", e.code, e.message))
}

fn classify(mut e: CallError) -> CallError {
    if CONFIG_CODES.contains(&e.code.as_str()) {
        e.class = ErrorClass::Permanent;
    }
    e
}

impl Env {
    /// Replaces each of `names` that is given by reference with its document's text, so that the
    /// function then parses it as it parses an inline one. A reference that is wrong (no such
    /// file or parameter, no right to read it) is a configuration problem naming the source; a
    /// fault on the way (throttling, a timeout) fails the cold start as retryable, since the
    /// configuration itself may be fine. The SSM client is built only when a variable needs it;
    /// against a custom endpoint (an emulator) S3 is addressed path-style.
    pub async fn load_documents(
        &mut self,
        names: &[&str],
        sdk: &SdkConfig,
    ) -> Result<(), FunctionError> {
        let task_root = self.raw("LAMBDA_TASK_ROOT").ok().flatten();
        let mut ssm: Option<aws_sdk_ssm::Client> = None;
        for &name in names {
            let Ok(Some(value)) = self.raw(name) else {
                continue;
            };
            let source = match DocumentSource::parse(&value) {
                Ok(source) => source,
                Err(problem) => {
                    self.problem(name, problem);
                    self.set(name, None);
                    continue;
                }
            };
            let text = match &source {
                DocumentSource::Inline => continue,
                DocumentSource::File(path) => read_file(&resolve_path(path, task_root.as_deref())),
                DocumentSource::Ssm(parameter) => {
                    let client = ssm.get_or_insert_with(|| crate::sdk_client!(aws_sdk_ssm, sdk));
                    match read_parameter(client, parameter).await {
                        Ok(text) => Ok(text),
                        Err(e) => Err(problem_or_fault(e)?),
                    }
                }
                DocumentSource::S3 { bucket, key } => {
                    match super::s3_object::read(sdk, bucket, key, MAX_DOCUMENT_BYTES)
                        .await
                        .map_err(classify)
                    {
                        Ok(text) => Ok(text),
                        Err(e) => Err(problem_or_fault(e)?),
                    }
                }
            };
            self.sources.insert(name.to_string(), source);
            match text {
                Ok(text) => self.set(name, Some(text)),
                Err(problem) => {
                    self.problem(name, problem);
                    self.set(name, None);
                }
            }
        }
        crate::cold_start::phase("documents");
        Ok(())
    }
}

async fn read_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<String, CallError> {
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| classify(CallError::aws("ssm", "GetParameter", e)))?;
    out.parameter.and_then(|p| p.value).ok_or_else(|| {
        CallError::new(
            "ssm",
            "GetParameter",
            "NoValue",
            "the parameter has no value",
            ErrorClass::Permanent,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            DocumentSource::parse(r#" {"rules": []}"#),
            Ok(DocumentSource::Inline)
        );
        assert_eq!(DocumentSource::parse("[1]"), Ok(DocumentSource::Inline));
        assert_eq!(
            DocumentSource::parse("file:rules.json"),
            Ok(DocumentSource::File("rules.json".into()))
        );
        assert_eq!(
            DocumentSource::parse("ssm:/autonomic/asg-scaler/SCALING_RULES"),
            Ok(DocumentSource::Ssm(
                "/autonomic/asg-scaler/SCALING_RULES".into()
            ))
        );
        assert_eq!(
            DocumentSource::parse("ssm:arn:aws:ssm:eu-west-1:123456789012:parameter/a/b"),
            Ok(DocumentSource::Ssm(
                "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b".into()
            ))
        );
        assert_eq!(
            DocumentSource::parse("s3://config-bucket/autonomic/rules.json"),
            Ok(DocumentSource::S3 {
                bucket: "config-bucket".into(),
                key: "autonomic/rules.json".into()
            })
        );
        for bad in [
            "file:",
            "ssm:",
            "ssm:a b",
            "s3://bucket",
            "s3:///key",
            "rules",
        ] {
            assert!(DocumentSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_files_are_read_from_the_task_root() {
        assert_eq!(
            resolve_path(Path::new("config/rules.json"), Some("/var/task")),
            PathBuf::from("/var/task/config/rules.json")
        );
        assert_eq!(
            resolve_path(Path::new("/etc/rules.json"), Some("/var/task")),
            PathBuf::from("/etc/rules.json")
        );
        assert_eq!(
            resolve_path(Path::new("rules.json"), None),
            PathBuf::from("rules.json")
        );
    }

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    #[tokio::test]
    async fn a_file_document_replaces_the_reference_and_problems_name_the_file() {
        let dir = std::env::temp_dir().join(format!("autonomic-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("good.json"), r#"{"a": 1}"#).unwrap();
        let root = dir.to_string_lossy().to_string();
        let mut env = Env::from_map([
            ("LAMBDA_TASK_ROOT", root.as_str()),
            ("GOOD", "file:good.json"),
            ("MISSING", "file:missing.json"),
            ("DEVICE", "file:/dev/zero"),
            ("INLINE", r#"{"b": 2}"#),
            ("WRONG", "rules.json"),
        ]);
        env.load_documents(
            &["GOOD", "MISSING", "DEVICE", "INLINE", "WRONG", "UNSET"],
            &sdk(),
        )
        .await
        .unwrap();
        let good = env.parse("GOOD", true, |t| Ok(t.to_string()));
        assert_eq!(good.as_deref(), Some(r#"{"a": 1}"#));
        let inline = env.parse("INLINE", true, |t| Ok(t.to_string()));
        assert_eq!(inline.as_deref(), Some(r#"{"b": 2}"#));
        // A later parse problem names the source too.
        env.parse::<()>("GOOD", true, |_| Err("rules[0]: bad".into()));
        let text = env.finish().unwrap_err().to_string();
        assert!(
            text.contains("MISSING (from file missing.json): cannot read"),
            "{text}"
        );
        assert!(
            text.contains(
                "WRONG: expected a JSON document, file:PATH, ssm:NAME or s3://BUCKET/KEY"
            ),
            "{text}"
        );
        assert!(
            text.contains("GOOD (from file good.json): rules[0]: bad"),
            "{text}"
        );
        assert!(
            text.contains("DEVICE (from file /dev/zero): is not a regular file"),
            "{text}"
        );
        assert!(!text.contains("UNSET"), "{text}");
        std::fs::remove_dir_all(dir).ok();
    }
}
