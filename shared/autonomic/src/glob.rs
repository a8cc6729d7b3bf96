//! Glob patterns for alarm names, repository names and image tags, in globset's syntax (which this
//! replaces): `*` (any run of characters), `?` (one character), `[abc]`, `[a-z]`, `[!abc]`
//! (`[^abc]` too), `[[:digit:]]` and the other POSIX classes, `{a,b}` (alternatives; an empty one
//! is dropped, as globset drops it; not nested) and `\` (the next character as itself; inside
//! `[..]` a `\` is itself). Case-sensitive, and the whole text must match. Within segments
//! (repository names), `**/` is any number of whole segments, a trailing `/**` everything below,
//! and a `**` elsewhere one segment's `*`, as in globset.
//!
//! Written here rather than taken from globset: globset compiles each pattern to a regular
//! expression, and its regex engine with Unicode tables cost each function's zip about 0.3 MB.
//! The matcher walks the text once per token (time linear in text times pattern, no
//! backtracking), so no pattern can make it slow.

use std::fmt;

/// At most this many alternatives after expanding `{..}` groups (`{a,b}{c,d}` is four).
const MAX_ALTERNATIVES: usize = 64;

/// A compiled glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    alternatives: Vec<Vec<Token>>,
    within_segment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    /// A trailing `/**` within segments: any run, across `/` too.
    AnyPath,
    /// A `**/` within segments: nothing, or any run that ends with a `/`.
    AnyDirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl Glob {
    /// A glob whose `*`, `?` and classes match `/` too (alarm names, tags).
    pub fn new(pattern: &str) -> Result<Self, String> {
        Self::build(pattern, false)
    }

    /// A glob whose `*`, `?` and classes stay within one `/`-separated segment (`team/*` takes
    /// `team/app`, not `team/app/worker`); `**` still crosses segments.
    pub fn within_segment(pattern: &str) -> Result<Self, String> {
        Self::build(pattern, true)
    }

    fn build(pattern: &str, within_segment: bool) -> Result<Self, String> {
        let mut alternatives = vec![Vec::new()];
        let mut chars = pattern.chars().peekable();
        let at = |e: String| format!("{pattern:?}: {e}");
        let mut previous: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    let after_separator = matches!(previous, None | Some('/'));
                    let token = if !within_segment || !after_separator {
                        Token::AnyRun
                    } else if chars.peek() == Some(&'/') {
                        chars.next();
                        Token::AnyDirs
                    } else if chars.peek().is_none() {
                        Token::AnyPath
                    } else {
                        Token::AnyRun
                    };
                    push(&mut alternatives, token);
                }
                '*' => push(&mut alternatives, Token::AnyRun),
                '{' => {
                    let mut options = vec![Vec::new()];
                    loop {
                        match chars.next() {
                            None => return Err(at("a { is not closed".into())),
                            Some('}') => break,
                            Some(',') => options.push(Vec::new()),
                            Some('{') => return Err(at("{..} groups do not nest".into())),
                            Some('*') => last(&mut options).push(Token::AnyRun),
                            Some(other) => {
                                last(&mut options).push(one_token(other, &mut chars).map_err(at)?)
                            }
                        }
                    }
                    // An empty alternative is dropped (globset's default), unless all are empty.
                    if options.iter().any(|o| !o.is_empty()) {
                        options.retain(|o| !o.is_empty());
                    }
                    if alternatives.len() * options.len() > MAX_ALTERNATIVES {
                        return Err(at(format!("more than {MAX_ALTERNATIVES} alternatives")));
                    }
                    alternatives = alternatives
                        .iter()
                        .flat_map(|prefix| {
                            options.iter().map(move |option| {
                                let mut tokens = prefix.clone();
                                tokens.extend(option.iter().cloned());
                                tokens
                            })
                        })
                        .collect();
                }
                other => push(&mut alternatives, one_token(other, &mut chars).map_err(at)?),
            }
            previous = Some(c);
        }
        Ok(Self {
            pattern: pattern.to_string(),
            alternatives,
            within_segment,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.alternatives
            .iter()
            .any(|tokens| self.matches(tokens, &text))
    }

    /// `reach[i]`: the tokens so far can match exactly `text[..i]`.
    fn matches(&self, tokens: &[Token], text: &[char]) -> bool {
        let crosses = |c: char| !(self.within_segment && c == '/');
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for token in tokens {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::AnyDirs => {
                    let mut seen = false;
                    for i in 0..=text.len() {
                        next[i] = reach[i] || (seen && text[i - 1] == '/');
                        seen |= reach[i];
                    }
                }
                Token::AnyRun | Token::AnyPath => {
                    let across = matches!(token, Token::AnyPath) || !self.within_segment;
                    let mut open = false;
                    for i in 0..=text.len() {
                        if i > 0 && !across && text[i - 1] == '/' {
                            open = false;
                        }
                        open |= reach[i];
                        next[i] = open;
                    }
                }
                one => {
                    for i in 0..text.len() {
                        next[i + 1] = reach[i]
                            && match one {
                                Token::Literal(c) => text[i] == *c,
                                Token::AnyOne => crosses(text[i]),
                                Token::Class { negated, ranges } => {
                                    crosses(text[i])
                                        && *negated
                                            != ranges
                                                .iter()
                                                .any(|(lo, hi)| (*lo..=*hi).contains(&text[i]))
                                }
                                Token::AnyRun | Token::AnyPath | Token::AnyDirs => {
                                    unreachable!("handled above")
                                }
                            };
                    }
                }
            }
            if !next.contains(&true) {
                return false;
            }
            reach = next;
        }
        reach[text.len()]
    }
}

fn last(options: &mut [Vec<Token>]) -> &mut Vec<Token> {
    let n = options.len() - 1;
    &mut options[n]
}

fn push(alternatives: &mut [Vec<Token>], token: Token) {
    for tokens in alternatives {
        tokens.push(token.clone());
    }
}

/// The token of `c`, read alike in a pattern and inside a `{..}` group: `\\` and the character
/// after it, `?`, a `[..]` class, or `c` itself. (`*`, `{`, `}` and `,` are read by the caller.)
fn one_token(
    c: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Token, String> {
    match c {
        '\\' => chars
            .next()
            .map(Token::Literal)
            .ok_or_else(|| "ends with a lone \\".to_string()),
        '?' => Ok(Token::AnyOne),
        '[' => parse_class(chars),
        other => Ok(Token::Literal(other)),
    }
}

/// After a `[`: `!` or `^` negates, a `]` first is itself, `a-z` is a range, `-` first or last
/// is itself, `[:name:]` is a POSIX class, and `\\` is itself (as in globset).
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, String> {
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let unclosed = || "a [ is not closed".to_string();
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = chars.next().ok_or_else(unclosed)?;
        if c == ']' && !first {
            return Ok(Token::Class { negated, ranges });
        }
        first = false;
        if c == '[' && chars.peek() == Some(&':') {
            let mut ahead = chars.clone();
            ahead.next();
            let name: String = ahead.by_ref().take_while(|&ch| ch != ':').collect();
            if ahead.next() == Some(']') {
                let class = posix_class(&name).ok_or_else(|| {
                    format!("[:{name}:] is not a character class (alnum, alpha, blank, cntrl, digit, graph, lower, print, punct, space, upper, xdigit)")
                })?;
                ranges.extend_from_slice(class);
                *chars = ahead;
                continue;
            }
        }
        let mut ahead = chars.clone();
        if ahead.next() == Some('-') && !matches!(ahead.peek(), Some(']') | None) {
            chars.next();
            let hi = chars.next().ok_or_else(unclosed)?;
            if hi < c {
                return Err(format!("the range {c}-{hi} runs backwards"));
            }
            ranges.push((c, hi));
        } else {
            ranges.push((c, c));
        }
    }
}

/// The ASCII POSIX classes, as ranges.
fn posix_class(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "blank" => &[(' ', ' '), ('\t', '\t')],
        "cntrl" => &[('\0', '\x1f'), ('\x7f', '\x7f')],
        "digit" => &[('0', '9')],
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[('\t', '\r'), (' ', ' ')],
        "upper" => &[('A', 'Z')],
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(yes("web-*-high", "web-api-high"));
        assert!(yes("web-*-high", "web--high"));
        assert!(!yes("web-*-high", "web-api-low"));
        assert!(yes("*", ""));
        assert!(yes("*-rc*", "1.4.0-rc1"));
        assert!(!yes("*-rc*", "1.4.0"));
        assert!(yes("v?.?", "v1.2"));
        assert!(!yes("v?.?", "v1.22"));
        assert!(yes("a*b*c", "aXbYbZc"));
        assert!(!yes("a*b*c", "aXbYbZ"));
        assert!(yes("web", "web"));
        assert!(!yes("web", "web-1"), "the whole text must match");
        assert!(!yes("Web", "web"), "case-sensitive");
    }

    #[test]
    fn classes() {
        assert!(yes("db-[0-9]", "db-7"));
        assert!(!yes("db-[0-9]", "db-x"));
        assert!(yes("db-[!0-9]", "db-x"));
        assert!(yes("db-[^0-9]", "db-x"));
        assert!(!yes("db-[!0-9]", "db-7"));
        assert!(yes("[]a]", "]"));
        assert!(yes("[a-]", "-"));
        assert!(yes("[abc]x", "bx"));
        assert!(yes("v[[:digit:]]*", "v2.1"));
        assert!(!yes("v[[:digit:]]*", "vx"));
        assert!(yes("[[:alpha:]_]x", "_x"));
        assert!(yes("[![:space:]]", "a"));
        assert!(!yes("[![:space:]]", " "));
        assert!(yes(r"[\]x", r"\x"), "a backslash in a class is itself");
    }

    #[test]
    fn alternatives_and_escapes() {
        assert!(yes("orders-{east,west}-*", "orders-west-writer"));
        assert!(!yes("orders-{east,west}-*", "orders-north-writer"));
        assert!(yes("{a,b}{c,d}", "bd"));
        assert!(yes("foo{,.txt}", "foo.txt"));
        assert!(
            !yes("foo{,.txt}", "foo"),
            "an empty alternative is dropped, as in globset"
        );
        assert!(yes("release-{1.*,2.0.?}", "release-2.0.3"));
        assert!(yes(r"what\?", "what?"));
        assert!(!yes(r"what\?", "whatX"));
        assert!(yes(r"\*", "*"));
    }

    #[test]
    fn a_segment_glob_stays_within_one_segment() {
        let g = Glob::within_segment("team/*").unwrap();
        assert!(g.is_match("team/app"));
        assert!(!g.is_match("team/app/worker"));
        assert!(
            !Glob::within_segment("team?app")
                .unwrap()
                .is_match("team/app")
        );
        assert!(
            Glob::within_segment("team/**")
                .unwrap()
                .is_match("team/app/worker")
        );
        assert!(Glob::new("team/*").unwrap().is_match("team/app/worker"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in ["[abc", "a{b,c", "a{b,{c}}", r"trailing\", "[[:word:]]"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
        assert!(Glob::new("[z-a]").unwrap_err().contains("runs backwards"));
        let many = "{a,b}".repeat(7);
        assert!(Glob::new(&many).unwrap_err().contains("alternatives"));
    }

    #[test]
    fn long_texts_do_not_blow_up() {
        let g = Glob::new(&"*a".repeat(50)).unwrap();
        assert!(!g.is_match(&"a".repeat(49)));
        assert!(g.is_match(&"a".repeat(500)));
    }
}
