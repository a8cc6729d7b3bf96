//! Glob patterns for alarm names, repository names and image tags: `*` (any run of characters),
//! `?` (one character), `[abc]`, `[a-z]`, `[!abc]` (`[^abc]` too), `{a,b}` (alternatives, not
//! nested) and `\` (the next character as itself). Case-sensitive, and the whole text must match.
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
    /// `**`: any run, across `/` too (the same as `*` unless matching within a segment).
    AnyPath,
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
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let escaped = chars
                        .next()
                        .ok_or_else(|| format!("{pattern:?}: ends with a lone \\"))?;
                    push(&mut alternatives, Token::Literal(escaped));
                }
                '?' => push(&mut alternatives, Token::AnyOne),
                '*' => {
                    if chars.peek() == Some(&'*') {
                        chars.next();
                        while chars.peek() == Some(&'*') {
                            chars.next();
                        }
                        push(&mut alternatives, Token::AnyPath);
                    } else {
                        push(&mut alternatives, Token::AnyRun);
                    }
                }
                '[' => {
                    let class = parse_class(&mut chars)
                        .ok_or_else(|| format!("{pattern:?}: a [ is not closed"))?;
                    push(&mut alternatives, class);
                }
                '{' => {
                    let mut options = vec![Vec::new()];
                    loop {
                        match chars.next() {
                            None => return Err(format!("{pattern:?}: a {{ is not closed")),
                            Some('}') => break,
                            Some(',') => options.push(Vec::new()),
                            Some('{') => {
                                return Err(format!("{pattern:?}: {{..}} groups do not nest"));
                            }
                            Some('\\') => {
                                let escaped = chars
                                    .next()
                                    .ok_or_else(|| format!("{pattern:?}: ends with a lone \\"))?;
                                last(&mut options).push(Token::Literal(escaped));
                            }
                            Some('?') => last(&mut options).push(Token::AnyOne),
                            Some('*') => last(&mut options).push(Token::AnyRun),
                            Some('[') => {
                                let class = parse_class(&mut chars)
                                    .ok_or_else(|| format!("{pattern:?}: a [ is not closed"))?;
                                last(&mut options).push(class);
                            }
                            Some(other) => last(&mut options).push(Token::Literal(other)),
                        }
                    }
                    if alternatives.len() * options.len() > MAX_ALTERNATIVES {
                        return Err(format!(
                            "{pattern:?}: more than {MAX_ALTERNATIVES} alternatives"
                        ));
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
                other => push(&mut alternatives, Token::Literal(other)),
            }
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
                                Token::AnyRun | Token::AnyPath => unreachable!("handled above"),
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

/// After a `[`: `!` or `^` negates, a `]` first is itself, `a-z` is a range, `-` first or last
/// is itself. `None` when the class is not closed.
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Token> {
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = chars.next()?;
        if c == ']' && !first {
            return Some(Token::Class { negated, ranges });
        }
        first = false;
        let lo = if c == '\\' { chars.next()? } else { c };
        let mut ahead = chars.clone();
        if ahead.next() == Some('-') && !matches!(ahead.peek(), Some(']') | None) {
            chars.next();
            let hi = match chars.next()? {
                '\\' => chars.next()?,
                hi => hi,
            };
            if hi < lo {
                return None;
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
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
    }

    #[test]
    fn alternatives_and_escapes() {
        assert!(yes("orders-{east,west}-*", "orders-west-writer"));
        assert!(!yes("orders-{east,west}-*", "orders-north-writer"));
        assert!(yes("{a,b}{c,d}", "bd"));
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
        for bad in ["[abc", "a{b,c", "a{b,{c}}", r"trailing\", "[z-a]"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
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
