//! Which `resources:` and `components:` entries name a git repository, and how kustomize (v5)
//! splits one into the repository to clone, the directory inside it, and the query options
//! (`ref`/`version`, `timeout`, `submodules`).
//!
//! The forms: `https://host/org/repo//path?ref=v1` (and `http://`, `ssh://`, `file://`),
//! `git@host:org/repo//path`, `github.com/org/repo/path`, Azure's `…/_git/repo/path`, a
//! `.git` suffix ending the repository (`https://host/a/b/c.git/path`); a leading `git::` is
//! dropped. Without `.git` or `_git/`, the repository of a non-local URL is its first two path
//! segments and the rest is the directory; a `file://` URL without `.git` is split at `//`.
//! ferry also reads `git://` URLs, which kustomize takes for local paths.

use std::time::Duration;

/// How long git may take to fetch a remote base unless the URL says otherwise (`?timeout=`):
/// kustomize's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(27);

/// A remote base as a kustomization names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// The entry as written.
    pub raw: String,
    /// What `git clone` is given.
    pub clone_url: String,
    /// The kustomization's directory inside the repository (`""`: its root), normalized.
    pub path: String,
    /// `?ref=` (or `?version=`): a tag, branch or commit; empty for the default branch.
    pub reference: String,
    pub timeout: Duration,
    pub submodules: bool,
    /// Whether the entry began with `git::`, which kustomize drops with a warning.
    pub forced_git: bool,
}

/// Reads `entry` as a remote base: `None` when it is a local path (as kustomize decides),
/// an error when it looks like a URL but names no repository.
pub fn parse(entry: &str) -> Option<Result<RemoteSpec, String>> {
    if entry.starts_with('/') {
        return None;
    }
    let (before, query) = entry.split_once('?').unwrap_or((entry, ""));
    let (reference, timeout, submodules) = parse_query(query);
    let (forced_git, unforced) = match strip_prefix_ignore_case(before, "git::") {
        Some(rest) => (true, rest),
        None => (false, before),
    };
    let parts = split_repository(unforced, forced_git);
    let looks_remote = entry.contains("://") || forced_git || entry.starts_with("git@");
    let Some((host, repo_path, suffix, path)) = parts else {
        return looks_remote.then(|| Err("names no host and repository".to_string()));
    };
    if repo_path.is_empty() {
        return Some(Err("names no repository path".to_string()));
    }
    let path = match clean_path(&path) {
        Ok(path) => path,
        Err(err) => return Some(Err(err)),
    };
    let clone_url = if is_azure_or_aws(&host) {
        format!("{host}{repo_path}")
    } else {
        format!("{host}{repo_path}{suffix}")
    };
    Some(Ok(RemoteSpec {
        raw: entry.to_string(),
        clone_url,
        path,
        reference,
        timeout,
        submodules,
        forced_git,
    }))
}

/// Host (with scheme and user), repository path, `.git` suffix to add, and the rest.
fn split_repository(n: &str, forced_git: bool) -> Option<(String, String, &'static str, String)> {
    const DELIMITER: &str = "_git/";
    if let Some(index) = n.find(DELIMITER) {
        let split = index + DELIMITER.len();
        let host = normalize_host(&n[..split], forced_git);
        let repo = n[split..].split('/').next().unwrap_or("").to_string();
        let rest = decode(&n[split + repo.len()..]);
        return Some((host, repo, "", rest));
    }
    let (host, n) = extract_host(n)?;
    let n = n.as_str();
    let local = host.starts_with("file://");
    if let Some(index) = n.find(".git") {
        let rest = &n[index + 4..];
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        return Some((host, n[..index].to_string(), ".git", decode(rest)));
    }
    if local {
        return Some(match n.find("//").filter(|&i| i > 0) {
            Some(i) => (host, n[..i].to_string(), "", decode(&n[i + 2..])),
            None => (host, decode(n), "", String::new()),
        });
    }
    let Some(first) = n.find('/').filter(|&i| i >= 1) else {
        return Some((host, String::new(), ".git", decode(n)));
    };
    Some(match n[first + 1..].find('/') {
        Some(second) => {
            let end = first + 1 + second;
            (host, n[..end].to_string(), ".git", decode(&n[end + 1..]))
        }
        None => (host, decode(n), ".git", String::new()),
    })
}

/// The scheme, user and host of `n` (`https://host/`, `git@host:`, `file://`) and the rest;
/// `None` when `n` has none, i.e. is a local path.
fn extract_host(n: &str) -> Option<(String, String)> {
    let (scheme, n) = ["ssh://", "https://", "http://", "file://", "git://"]
        .iter()
        .find_map(|scheme| strip_prefix_ignore_case(n, scheme).map(|rest| (*scheme, rest)))
        .unwrap_or(("", n));
    let (user, n) = match strip_prefix_ignore_case(n, "git@") {
        Some(rest) => ("git@", rest),
        None => ("", n),
    };
    let lower = n.to_ascii_lowercase();
    let github = lower.starts_with("github.com/") || lower.starts_with("github.com:");
    let scp = scheme.is_empty() && (!user.is_empty() || github);
    let valid = match scheme {
        "" => scp,
        "https://" | "http://" | "git://" => user.is_empty(),
        _ => true,
    };
    if !valid {
        return None;
    }
    if scheme == "file://" {
        // Everything after the scheme is a path on this machine, a user-like part included.
        return Some((scheme.to_string(), format!("{user}{n}")));
    }
    let slash = n.find('/');
    let colon = n.find(':').filter(|&c| c > 0);
    let separator = match (scp, colon, slash) {
        (true, Some(c), Some(s)) if c < s => c,
        (_, _, s) => s?,
    };
    let (host, rest) = (&n[..=separator], &n[separator + 1..]);
    let host = if github {
        if scheme == "ssh://" || !user.is_empty() {
            format!("{user}github.com:")
        } else {
            "https://github.com/".to_string()
        }
    } else {
        format!("{scheme}{user}{host}")
    };
    Some((host, rest.to_string()))
}

/// kustomize's normalization of a `_git/` host: GitHub hosts become their canonical form, a
/// `git::` prefix is dropped.
fn normalize_host(host: &str, forced_git: bool) -> String {
    let lower = host.to_ascii_lowercase();
    if lower.contains("github.com") {
        if lower.contains("git@") || lower.contains("ssh:") {
            return "git@github.com:".to_string();
        }
        return "https://github.com/".to_string();
    }
    if forced_git {
        return lower;
    }
    host.to_string()
}

fn is_azure_or_aws(host: &str) -> bool {
    ["dev.azure.com", "visualstudio.com", "amazonaws.com"]
        .iter()
        .any(|known| host.contains(known))
}

/// The directory inside the repository, normalized; refused when it climbs out.
fn clean_path(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for piece in path.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("its path leads outside the repository".to_string());
                }
            }
            piece => parts.push(piece),
        }
    }
    Ok(parts.join("/"))
}

/// `ref` (else `version`), `timeout` and `submodules` of a query; a malformed query gives
/// the defaults, as in kustomize.
fn parse_query(query: &str) -> (String, Duration, bool) {
    let mut values: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return (String::new(), DEFAULT_TIMEOUT, true);
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        values.push((decode(key), decode(value)));
    }
    let get = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    };
    let reference = match get("ref") {
        "" => get("version"),
        reference => reference,
    };
    let timeout = parse_timeout(get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
    let submodules = parse_bool(get("submodules")).unwrap_or(true);
    (reference.to_string(), timeout, submodules)
}

/// Whole seconds (`61`) or a Go duration (`1m30s`, `500ms`); only positive values count.
fn parse_timeout(text: &str) -> Option<Duration> {
    if let Ok(seconds) = text.parse::<u64>() {
        return (seconds > 0).then(|| Duration::from_secs(seconds));
    }
    go_duration(text).filter(|d| !d.is_zero())
}

/// A Go duration string: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Percent-decoding (`+` stays `+` in paths; in queries Go reads it as a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(entry: &str) -> RemoteSpec {
        parse(entry)
            .unwrap_or_else(|| panic!("{entry} is remote"))
            .unwrap_or_else(|err| panic!("{entry}: {err}"))
    }

    #[track_caller]
    fn splits(entry: &str, clone_url: &str, path: &str, reference: &str) {
        let spec = spec(entry);
        assert_eq!(
            (
                spec.clone_url.as_str(),
                spec.path.as_str(),
                spec.reference.as_str()
            ),
            (clone_url, path, reference),
            "{entry}"
        );
    }

    #[test]
    fn splits_kustomize_url_forms() {
        splits(
            "https://github.com/org/repo//deploy/base?ref=v1.2.0",
            "https://github.com/org/repo.git",
            "deploy/base",
            "v1.2.0",
        );
        splits(
            "github.com/org/repo/deploy?version=v2",
            "https://github.com/org/repo.git",
            "deploy",
            "v2",
        );
        splits(
            "git@github.com:org/repo.git/deploy?ref=main",
            "git@github.com:org/repo.git",
            "deploy",
            "main",
        );
        splits(
            "git@gitlab.example.com:org/repo//app",
            "git@gitlab.example.com:org/repo.git",
            "app",
            "",
        );
        splits(
            "ssh://git@host.example/org/team/repo.git//app?ref=v1",
            "ssh://git@host.example/org/team/repo.git",
            "app",
            "v1",
        );
        splits(
            "https://dev.azure.com/org/project/_git/repo/app?ref=v3",
            "https://dev.azure.com/org/project/_git/repo",
            "app",
            "v3",
        );
        splits(
            "file:///srv/git/repo.git//app?ref=v1",
            "file:///srv/git/repo.git",
            "app",
            "v1",
        );
        splits(
            "file:///srv/git/repo//app/base?ref=v1",
            "file:///srv/git/repo",
            "app/base",
            "v1",
        );
        splits(
            "git::git://127.0.0.1:9418/repo.git//app?ref=v1&timeout=90s",
            "git://127.0.0.1:9418/repo.git",
            "app",
            "v1",
        );
    }

    #[test]
    fn reads_the_query_options() {
        let parsed = spec(
            "https://example.com/org/repo//a?version=v1&ref=v2&timeout=1m30s&submodules=false",
        );
        assert_eq!(parsed.reference, "v2");
        assert_eq!(parsed.timeout, Duration::from_secs(90));
        assert!(!parsed.submodules);
        let parsed = spec("https://example.com/org/repo?timeout=61");
        assert_eq!(parsed.timeout, Duration::from_secs(61));
        assert_eq!(parsed.path, "");
        let parsed = spec("https://example.com/org/repo?timeout=soon");
        assert_eq!(parsed.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn local_paths_are_not_remote() {
        for entry in [
            "../base",
            "base",
            "deploy/app.yaml",
            "/abs/path",
            "example.com/org/repo",
        ] {
            assert_eq!(parse(entry), None, "{entry}");
        }
    }

    #[test]
    fn refuses_urls_without_a_repository_or_leaving_it() {
        assert_eq!(
            parse("https://example.com/org/repo//../../etc?ref=v1"),
            Some(Err("its path leads outside the repository".to_string()))
        );
        assert_eq!(
            parse("https://example.com"),
            Some(Err("names no host and repository".to_string()))
        );
        assert_eq!(
            parse("https://example.com/repo"),
            Some(Err("names no repository path".to_string()))
        );
    }
}
