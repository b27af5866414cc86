//! Resolving and reading the paths a kustomization names, under the load restrictions: nothing
//! outside the source root (symbolic links followed first) and, when asked for kustomize's
//! default restriction, no file outside the directory of the kustomization that names it.

use super::error::RenderError;
use super::kustomization::FILE_NAMES;
use super::source::{EntryKind, FileSource};

/// Which files a kustomization may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadRestriction {
    /// Any file inside the source root (a repository).
    #[default]
    SourceRoot,
    /// Only files in or below the kustomization's own directory (kustomize's default);
    /// directories of other kustomizations may be anywhere in the source.
    KustomizationDir,
}

/// Reads files for one build.
pub struct Loader<'a> {
    pub source: &'a dyn FileSource,
    pub restriction: LoadRestriction,
}

/// How a path is displayed: the root is `.`.
pub fn display(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

/// Whether `path` names a remote location (a URL or a git repository) rather than a file.
fn is_remote(path: &str) -> bool {
    path.contains("://")
        || path.starts_with("git@")
        || path.contains("?ref=")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| path.starts_with(host))
}

/// `relative` resolved against `dir`, normalized; errors when it climbs above the root.
pub fn join(dir: &str, relative: &str) -> Result<String, String> {
    if relative.starts_with('/') {
        return Err("absolute paths are not allowed".to_string());
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for piece in relative.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("path leads outside the root".to_string());
                }
            }
            piece => parts.push(piece),
        }
    }
    Ok(parts.join("/"))
}

/// Whether `path` is `dir` or below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Loader<'_> {
    /// Resolves `relative` (named in the kustomization file `referrer`, which sits in `dir`)
    /// to a real path inside the source.
    pub fn resolve(
        &self,
        dir: &str,
        relative: &str,
        referrer: &str,
    ) -> Result<String, RenderError> {
        if is_remote(relative) {
            // Remote bases are resolved before this; a file is read from the source only.
            return Err(RenderError::Restricted {
                path: relative.to_string(),
                referrer: referrer.to_string(),
                reason: "a URL, not a file: files are read from the repository (a \
                         kustomization in another repository is included as a remote base)"
                    .to_string(),
            });
        }
        let restricted = |reason: String| RenderError::Restricted {
            path: relative.to_string(),
            referrer: referrer.to_string(),
            reason,
        };
        let joined = join(dir, relative).map_err(restricted)?;
        let real = self
            .source
            .resolve(&joined)
            .map_err(|source| RenderError::Read {
                path: joined.clone(),
                source,
            })?;
        real.ok_or_else(|| restricted("resolves to a path outside the root".to_string()))
    }

    /// What `path` is, if anything.
    pub fn entry(&self, path: &str) -> Result<Option<EntryKind>, RenderError> {
        self.source.entry(path).map_err(|source| RenderError::Read {
            path: display(path).to_string(),
            source,
        })
    }

    /// Reads a file named in a kustomization, applying the load restriction.
    pub fn read_file(
        &self,
        dir: &str,
        relative: &str,
        referrer: &str,
    ) -> Result<(String, Vec<u8>), RenderError> {
        let path = self.resolve(dir, relative, referrer)?;
        if self.restriction == LoadRestriction::KustomizationDir && !is_within(&path, dir) {
            return Err(RenderError::Restricted {
                path: relative.to_string(),
                referrer: referrer.to_string(),
                reason: "security; file is not in or below the kustomization's directory"
                    .to_string(),
            });
        }
        match self.entry(&path)? {
            Some(EntryKind::File) => {}
            Some(EntryKind::Dir) => {
                return Err(RenderError::Restricted {
                    path: relative.to_string(),
                    referrer: referrer.to_string(),
                    reason: "is a directory, not a file".to_string(),
                });
            }
            None => {
                return Err(RenderError::NotFound {
                    path: path.clone(),
                    referrer: referrer.to_string(),
                });
            }
        }
        let bytes = self
            .source
            .read(&path)
            .map_err(|source| RenderError::Read {
                path: path.clone(),
                source,
            })?;
        Ok((path, bytes))
    }

    /// Reads a text file named in a kustomization.
    pub fn read_text(
        &self,
        dir: &str,
        relative: &str,
        referrer: &str,
    ) -> Result<(String, String), RenderError> {
        let (path, bytes) = self.read_file(dir, relative, referrer)?;
        let text = String::from_utf8(bytes).map_err(|_| RenderError::InvalidResource {
            path: path.clone(),
            message: "not valid UTF-8 text".to_string(),
        })?;
        Ok((path, text))
    }

    /// The kustomization file of `dir`.
    pub fn kustomization_file(&self, dir: &str) -> Result<String, RenderError> {
        let mut found = Vec::new();
        for name in FILE_NAMES {
            let path = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            if self.entry(&path)? == Some(EntryKind::File) {
                found.push(path);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(RenderError::Kustomization {
                dir: display(dir).to_string(),
                problem: "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory".into(),
            }),
            _ => Err(RenderError::Kustomization {
                dir: display(dir).to_string(),
                problem: "found multiple kustomization files".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_normalizes_paths() {
        assert_eq!(join("envs/dev", "../base"), Ok("envs/base".to_string()));
        assert_eq!(join("", "./a/./b"), Ok("a/b".to_string()));
        assert!(join("envs/dev", "../../../etc/passwd").is_err());
        assert!(join("", "/etc/passwd").is_err());
    }

    #[test]
    fn containment_is_by_whole_components() {
        assert!(is_within("envs/dev/p.yaml", "envs/dev"));
        assert!(!is_within("envs/devx/p.yaml", "envs/dev"));
        assert!(is_within("anything", ""));
    }
}
