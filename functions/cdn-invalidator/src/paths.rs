//! Invalidation paths: normalising them as CloudFront expects, and reducing a set of them to as
//! few as cover the same objects (duplicates and paths under a wildcard dropped, crowded folders
//! collapsed into one wildcard).

use std::collections::{BTreeMap, BTreeSet};

/// CloudFront's documented maximum length of an invalidation path.
pub const MAX_PATH_LEN: usize = 4000;

/// Normalises one path: a leading `/`; RFC 3986 unreserved characters, sub-delimiters, `/`, `:`,
/// `@` and `?` kept; everything else (spaces, `"<>#{}|\^[]` and backquote, non-ASCII as UTF-8
/// bytes) percent-encoded, as CloudFront expects; `%XX` escapes kept as they are. Rejects, with
/// the reason, empty paths, control characters, a `*` anywhere but at the end, and paths over
/// [`MAX_PATH_LEN`].
pub fn normalize(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(format!("control character U+{:04X} in path", c as u32));
    }
    if raw.find('*').is_some_and(|i| i != raw.len() - 1) {
        return Err("a wildcard (*) may only end a path".into());
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 1);
    if bytes[0] != b'/' {
        out.push('/');
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if escaped {
            out.push_str(&raw[i..i + 3]);
            i += 3;
            continue;
        }
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@?".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    if out.len() > MAX_PATH_LEN {
        return Err(format!(
            "path is {} characters once encoded; CloudFront allows {MAX_PATH_LEN}",
            out.len()
        ));
    }
    Ok(out)
}

/// Escapes what [`normalize`] would otherwise read as syntax (`%XX` escapes, a trailing `*`, a
/// `?` query), for names that are literal, such as S3 object keys.
pub fn escape_literal(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '*' => out.push_str("%2A"),
            '?' => out.push_str("%3F"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether a normalised path is a wildcard (`/img/*`).
pub fn is_wildcard(path: &str) -> bool {
    path.ends_with('*')
}

/// A reduced set of paths: wildcard prefixes (the path without its `*`) of which none covers
/// another, and files that no wildcard covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSet {
    prefixes: Vec<String>,
    files: BTreeSet<String>,
}

impl PathSet {
    /// Reduces normalised paths.
    pub fn reduce<'a>(paths: impl IntoIterator<Item = &'a str>) -> PathSet {
        let mut prefixes = Vec::new();
        let mut files = BTreeSet::new();
        for p in paths {
            match p.strip_suffix('*') {
                Some(prefix) => prefixes.push(prefix.to_string()),
                None => {
                    files.insert(p.to_string());
                }
            }
        }
        let mut set = PathSet {
            prefixes: minimal_prefixes(prefixes),
            files: BTreeSet::new(),
        };
        set.files = files
            .into_iter()
            .filter(|f| set.covering(f).is_none())
            .collect();
        set
    }

    /// The wildcard prefix that covers `path`, if any. The prefixes are sorted and none is a
    /// prefix of another, so the only candidate is the greatest one not after `path`.
    pub fn covering(&self, path: &str) -> Option<&str> {
        let probe = path.strip_suffix('*').unwrap_or(path);
        let i = self.prefixes.partition_point(|p| p.as_str() <= probe);
        let candidate = self.prefixes.get(i.checked_sub(1)?)?;
        probe
            .starts_with(candidate.as_str())
            .then_some(candidate.as_str())
    }

    /// Whether this set invalidates `path` (a normalised file or wildcard path).
    pub fn covers(&self, path: &str) -> bool {
        self.covering(path).is_some() || (!is_wildcard(path) && self.files.contains(path))
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    pub fn wildcard_count(&self) -> usize {
        self.prefixes.len()
    }

    /// Replaces the files of each folder holding more than `threshold` of them by the folder's
    /// wildcard, most crowded folders first, while the wildcard count stays within
    /// `max_wildcards`. The root folder is never collapsed: `/*` would empty the whole cache.
    pub fn collapse(self, threshold: usize, max_wildcards: usize) -> PathSet {
        let mut by_folder: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.files {
            let folder = f.rfind('/').map_or("/", |i| &f[..=i]);
            if folder != "/" {
                *by_folder.entry(folder).or_default() += 1;
            }
        }
        let mut crowded: Vec<(&str, usize)> = by_folder
            .into_iter()
            .filter(|(_, n)| *n > threshold)
            .collect();
        if crowded.is_empty() {
            return self;
        }
        crowded.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut prefixes = self.prefixes.clone();
        for (folder, _) in crowded {
            if minimal_prefixes(prefixes.clone()).len() >= max_wildcards {
                break;
            }
            prefixes.push(folder.to_string());
        }
        let wildcards: Vec<String> = prefixes.into_iter().map(|p| p + "*").collect();
        PathSet::reduce(
            wildcards
                .iter()
                .map(String::as_str)
                .chain(self.files.iter().map(String::as_str)),
        )
    }

    /// The paths to send: wildcards (with their `*`) first, then files, each sorted.
    pub fn paths(&self) -> Vec<String> {
        self.prefixes
            .iter()
            .map(|p| format!("{p}*"))
            .chain(self.files.iter().cloned())
            .collect()
    }
}

/// Sorted, deduplicated, and without any prefix that another one covers.
fn minimal_prefixes(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort();
    prefixes.dedup();
    let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        // In sorted order, whatever a kept prefix covers comes right after it.
        if kept.last().is_none_or(|k| !p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_cloudfront_expects() {
        assert_eq!(normalize("index.html").unwrap(), "/index.html");
        assert_eq!(normalize("/a b/ü.png").unwrap(), "/a%20b/%C3%BC.png");
        assert_eq!(
            normalize("/already%20encoded").unwrap(),
            "/already%20encoded"
        );
        assert_eq!(normalize("/100%").unwrap(), "/100%25");
        assert_eq!(normalize("/q?v=1&x=2").unwrap(), "/q?v=1&x=2");
        assert_eq!(normalize("/img/*").unwrap(), "/img/*");
        assert_eq!(normalize("/<tag>\"#").unwrap(), "/%3Ctag%3E%22%23");
    }

    #[test]
    fn literal_names_keep_their_percent_star_and_question_mark() {
        assert_eq!(
            normalize(&escape_literal("a%20b*.png?")).unwrap(),
            "/a%2520b%2A.png%3F"
        );
        assert_eq!(
            normalize(&escape_literal("img/ü b.png")).unwrap(),
            "/img/%C3%BC%20b.png"
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(normalize("").unwrap_err().contains("empty"));
        assert!(
            normalize("/a\nb")
                .unwrap_err()
                .contains("control character U+000A")
        );
        assert!(normalize("/a\u{7f}").unwrap_err().contains("control"));
        assert!(normalize("/img/*.png").unwrap_err().contains("only end"));
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert!(normalize(&long).unwrap_err().contains("4000"));
        // Encoding can push a path over the limit.
        let spaces = format!("/{}", " ".repeat(1400));
        assert!(normalize(&spaces).is_err());
    }

    #[test]
    fn reduce_drops_duplicates_and_covered_paths() {
        let set = PathSet::reduce([
            "/img/a.png",
            "/img/*",
            "/img/sub/*",
            "/css/x.css",
            "/css/x.css",
            "/imgx",
        ]);
        assert_eq!(set.paths(), ["/img/*", "/css/x.css", "/imgx"]);
        assert!(set.covers("/img/sub/deep.png"));
        assert!(set.covers("/img/sub/*"));
        assert!(!set.covers("/im"));
        assert!(!set.covers("/css/*"));
    }

    #[test]
    fn collapse_turns_crowded_folders_into_wildcards_within_the_budget() {
        let mut paths: Vec<String> = (0..5).map(|i| format!("/a/{i}.js")).collect();
        paths.extend((0..4).map(|i| format!("/b/{i}.js")));
        paths.extend((0..9).map(|i| format!("/{i}.html")));
        let set = PathSet::reduce(paths.iter().map(String::as_str));
        let c = set.clone().collapse(3, 15);
        assert!(
            c.paths()
                .starts_with(&["/a/*".to_string(), "/b/*".to_string()])
        );
        // The root folder stays as files.
        assert_eq!(c.file_count(), 9);
        // A budget of one wildcard takes the most crowded folder only.
        let one = set.clone().collapse(3, 1);
        assert_eq!(one.wildcard_count(), 1);
        assert!(one.covers("/a/0.js") && !one.covers("/b/*"));
        assert_eq!(one.file_count(), 4 + 9);
        // Below the threshold, nothing changes.
        assert_eq!(set.clone().collapse(5, 15), set);
    }
}
