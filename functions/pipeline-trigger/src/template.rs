//! Variable templates over a pushed image: `{registry}/{repository}@{digest}`.
//!
//! Parsed at cold start, so a template naming a value that does not exist is a configuration
//! error, never text passed on to a pipeline. `{{` and `}}` are literal braces.

use semver::Version;

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Tag,
    Digest,
    Repository,
    /// `<account>.dkr.ecr.<region>.amazonaws.com`
    Registry,
    Account,
    Region,
    Major,
    Minor,
    Patch,
    /// The prerelease part of a version (`rc1` in `1.4.0-rc1`), empty for a release.
    Prerelease,
}

const VALUES: &[(&str, Value)] = &[
    ("tag", Value::Tag),
    ("digest", Value::Digest),
    ("repository", Value::Repository),
    ("registry", Value::Registry),
    ("account", Value::Account),
    ("region", Value::Region),
    ("major", Value::Major),
    ("minor", Value::Minor),
    ("patch", Value::Patch),
    ("prerelease", Value::Prerelease),
];

impl Value {
    pub fn name(self) -> &'static str {
        VALUES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Value),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The pushed image a template is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub tag: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    /// The tag as a version, when the route's filter is a semver range.
    pub version: Option<&'a Version>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed {{{name}")),
                        }
                    }
                    let Some((_, value)) = VALUES.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<_> =
                            VALUES.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        return Err(format!(
                            "unknown value {{{name}}} (known: {})",
                            known.join(", ")
                        ));
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Value(*value));
                }
                '}' => return Err("a lone } (write }} for a literal brace)".into()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Why every value it renders would be refused (CodePipeline takes 1 to 1,000 characters),
    /// if so: empty, only `{prerelease}` (empty for every release), or text alone too long.
    pub fn never_valid(&self) -> Option<String> {
        if self.parts.is_empty() {
            return Some("renders empty; CodePipeline needs 1 to 1000 characters".into());
        }
        if self
            .parts
            .iter()
            .all(|p| matches!(p, Part::Value(Value::Prerelease)))
        {
            return Some("{prerelease} alone renders empty for every release".into());
        }
        let text: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.chars().count(),
                Part::Value(_) => 0,
            })
            .sum();
        (text > 1000)
            .then(|| format!("{text} characters of text alone; CodePipeline takes at most 1000"))
    }

    /// The values the template names.
    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Value(v) => Some(*v),
            Part::Text(_) => None,
        })
    }

    pub fn render(&self, image: &Image<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(v) => match v {
                    Value::Tag => out.push_str(image.tag),
                    Value::Digest => out.push_str(image.digest),
                    Value::Repository => out.push_str(image.repository),
                    Value::Registry => out.push_str(&format!(
                        "{}.dkr.ecr.{}.{}",
                        image.account,
                        image.region,
                        // The China Regions' partition has its own domain.
                        if image.region.starts_with("cn-") {
                            "amazonaws.com.cn"
                        } else {
                            "amazonaws.com"
                        }
                    )),
                    Value::Account => out.push_str(image.account),
                    Value::Region => out.push_str(image.region),
                    // Version parts are rejected at parse time unless every tag is a version.
                    Value::Major => {
                        out.push_str(&image.version.map_or(String::new(), |v| v.major.to_string()))
                    }
                    Value::Minor => {
                        out.push_str(&image.version.map_or(String::new(), |v| v.minor.to_string()))
                    }
                    Value::Patch => {
                        out.push_str(&image.version.map_or(String::new(), |v| v.patch.to_string()))
                    }
                    Value::Prerelease => out.push_str(image.version.map_or("", |v| v.pre.as_str())),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_and_literal_braces() {
        let v = Version::parse("1.4.0-rc1").unwrap();
        let image = Image {
            repository: "payments/api",
            digest: "sha256:ab",
            tag: "v1.4.0-rc1",
            account: "123456789012",
            region: "eu-west-1",
            version: Some(&v),
        };
        let t = Template::parse("{registry}/{repository}@{digest}").unwrap();
        assert_eq!(
            t.render(&image),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/api@sha256:ab"
        );
        let t = Template::parse("{{{major}}}.{minor}.{patch}-{prerelease} {tag}").unwrap();
        assert_eq!(t.render(&image), "{1}.4.0-rc1 v1.4.0-rc1");
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(
            Template::parse("{digets}")
                .unwrap_err()
                .starts_with("unknown value {digets}")
        );
        assert!(Template::parse("{tag").unwrap_err().starts_with("unclosed"));
        assert!(Template::parse("tag}").unwrap_err().starts_with("a lone }"));
        assert_eq!(Template::parse("plain").unwrap().values().count(), 0);
        assert!(Template::parse("").unwrap().never_valid().is_some());
        assert!(
            Template::parse("{prerelease}")
                .unwrap()
                .never_valid()
                .is_some()
        );
        assert!(
            Template::parse(&"x".repeat(1001))
                .unwrap()
                .never_valid()
                .is_some()
        );
        assert!(Template::parse("{tag}").unwrap().never_valid().is_none());
    }
}
