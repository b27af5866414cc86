//! Regular expressions of patch targets and image names, compiled once per process: the same
//! few patterns recur in every overlay of a repository. Most patterns are plain names, which
//! match by comparison and are never compiled at all.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex::Regex;
use rustc_hash::FxHashMap;

/// The compiled form of `pattern`, shared: compiling, and warming a regex's caches, is far
/// costlier than matching.
pub fn compiled(pattern: &str) -> Result<Arc<Regex>, regex::Error> {
    static CACHE: OnceLock<Mutex<FxHashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(regex) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return Ok(regex.clone());
    }
    let regex = Arc::new(Regex::new(pattern)?);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pattern.to_string(), regex.clone());
    Ok(regex)
}

/// A pattern that must match a whole text (`^(?:PATTERN)$`).
#[derive(Debug, Clone)]
pub enum Anchored {
    Plain(Plain),
    Regex(Arc<Regex>),
}

impl Anchored {
    /// `pattern`, anchored at both ends.
    pub fn new(pattern: &str) -> Result<Anchored, regex::Error> {
        if let Some(plain) = Plain::parse(pattern) {
            return Ok(Anchored::Plain(plain));
        }
        compiled(&format!("^(?:{pattern})$")).map(Anchored::Regex)
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Anchored::Plain(plain) => plain.prefix(text) == Some(text.len()),
            Anchored::Regex(regex) => regex.is_match(text),
        }
    }
}

/// A pattern with no regular-expression syntax but `.` (any character except a newline),
/// which is what names of patch targets and images nearly always are: it matches by
/// comparing characters, without compiling anything, and always a fixed number of them.
#[derive(Debug, Clone)]
pub struct Plain {
    pattern: String,
    /// Whether a `.` in `pattern` stands for any character (else the pattern is a literal).
    dots: bool,
}

impl Plain {
    /// `pattern` as a plain pattern, when it is one.
    pub fn parse(pattern: &str) -> Option<Plain> {
        let special = |c: char| "\\+*?()|[]{}^$".contains(c);
        (!pattern.chars().any(special)).then(|| Plain {
            pattern: pattern.to_string(),
            dots: true,
        })
    }

    /// `text` itself as a pattern: every character stands for itself.
    pub fn literal(text: &str) -> Plain {
        Plain {
            pattern: text.to_string(),
            dots: false,
        }
    }

    /// The length in bytes of the match at the start of `text`, if it matches there.
    pub fn prefix(&self, text: &str) -> Option<usize> {
        if !self.dots || !self.pattern.contains('.') {
            return text
                .starts_with(&self.pattern)
                .then_some(self.pattern.len());
        }
        let mut rest = text.char_indices();
        for wanted in self.pattern.chars() {
            let (_, got) = rest.next()?;
            if !(got == wanted || wanted == '.' && got != '\n') {
                return None;
            }
        }
        Some(rest.next().map_or(text.len(), |(at, _)| at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_matches_only_itself_without_compiling() {
        let name = Anchored::new("web").unwrap();
        assert!(matches!(name, Anchored::Plain(_)));
        assert!(name.is_match("web"));
        assert!(!name.is_match("web2"));
        assert!(!name.is_match("a-web"));
        assert!(!name.is_match("we"));
        let dashed = Anchored::new("my-app").unwrap();
        assert!(matches!(dashed, Anchored::Plain(_)));
        assert!(dashed.is_match("my-app"));
        assert!(!dashed.is_match("my-apps"));
    }

    #[test]
    fn a_dot_stands_for_any_character_but_a_newline_as_in_a_regex() {
        let host = Anchored::new("gcr.io/app").unwrap();
        let regex = Regex::new("^(?:gcr.io/app)$").unwrap();
        assert!(matches!(host, Anchored::Plain(_)));
        for text in [
            "gcr.io/app",
            "gcrXio/app",
            "gcr\u{e9}io/app",
            "gcr\nio/app",
            "gcr.io/ap",
        ] {
            assert_eq!(host.is_match(text), regex.is_match(text), "{text:?}");
        }
        assert_eq!(Plain::parse("a.b").unwrap().prefix("a\u{e9}b:1"), Some(4));
        assert_eq!(Plain::literal("a.b").prefix("aXb"), None);
        assert_eq!(Plain::literal("a.b").prefix("a.b:1"), Some(3));
    }

    #[test]
    fn other_syntax_makes_a_regex_anchored_at_both_ends() {
        let pattern = Anchored::new("web|api").unwrap();
        assert!(matches!(pattern, Anchored::Regex(_)));
        assert!(pattern.is_match("web"));
        assert!(pattern.is_match("api"));
        assert!(!pattern.is_match("webapi"));
        assert!(matches!(
            Anchored::new("app-.*").unwrap(),
            Anchored::Regex(_)
        ));
        assert!(Anchored::new("a(").is_err());
    }
}
