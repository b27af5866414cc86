//! The one error type of the renderer. Every variant names the file (or kustomization) it is
//! about, so a person can find the line to fix.

use std::fmt;
use std::io;

/// Why a kustomization could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file or directory could not be read.
    #[error("failed to read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A path named in a kustomization does not exist.
    #[error("{path}: no such file or directory (referenced by {referrer})")]
    NotFound { path: String, referrer: String },
    /// A path leaves the directory tree the renderer may read.
    #[error("{path}: {reason} (referenced by {referrer})")]
    Restricted {
        path: String,
        referrer: String,
        reason: String,
    },
    /// A directory holds no kustomization file, or more than one.
    #[error("{dir}: {problem}")]
    Kustomization { dir: String, problem: String },
    /// Kustomizations include each other in a loop.
    #[error("kustomization cycle: {}", .chain.join(" -> "))]
    Cycle { chain: Vec<String> },
    /// A YAML file is malformed.
    #[error("{path}:{position}: malformed YAML: {message}")]
    Yaml {
        path: String,
        position: Position,
        message: String,
    },
    /// A kustomization uses a field (or a kind of resource) the renderer does not support yet.
    #[error("{path}{}: not supported yet: {field}", line_suffix(*.line))]
    Unsupported {
        path: String,
        line: usize,
        field: String,
    },
    /// A kustomization has a field kustomize does not know.
    #[error("{path}:{line}: unknown field `{field}`")]
    UnknownField {
        path: String,
        line: usize,
        field: String,
    },
    /// A kustomization field has a value of the wrong shape.
    #[error("{path}:{line}: invalid `{field}`: {message}")]
    InvalidField {
        path: String,
        line: usize,
        field: String,
        message: String,
    },
    /// A manifest is not a Kubernetes object.
    #[error("{path}: {message}")]
    InvalidResource { path: String, message: String },
    /// A transformer, generator or patch cannot be applied.
    #[error("{kustomization}: {message}")]
    Transform {
        kustomization: String,
        message: String,
    },
    /// A `resources:` or `components:` entry looks like a URL but names no repository.
    #[error("{path}:{line}: invalid remote base `{url}`: {reason}")]
    InvalidRemote {
        path: String,
        line: usize,
        url: String,
        reason: String,
    },
    /// A remote base where this build fetches none.
    #[error("{path}:{line}: remote base `{url}`: remote bases are not fetched in this build")]
    RemoteDisabled {
        path: String,
        line: usize,
        url: String,
    },
    /// A remote base whose ref may change, where the build must be reproducible.
    #[error(
        "{path}:{line}: remote base `{url}` is not pinned ({what}); a render for a promotion \
         must be reproducible: pin it with `?ref=` and a tag or a full commit id"
    )]
    Unpinned {
        path: String,
        line: usize,
        url: String,
        what: String,
    },
    /// A remote base could not be fetched.
    #[error("{path}:{line}: failed to fetch remote base `{url}`")]
    Fetch {
        path: String,
        line: usize,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Building a remote base failed; paths in the cause are inside its repository.
    #[error("{path}:{line}: in remote base `{url}`")]
    InRemote {
        path: String,
        line: usize,
        url: String,
        #[source]
        source: Box<RenderError>,
    },
    /// A JSON 6902 patch operation failed.
    #[error("{0}")]
    JsonPatch(Box<PatchFailure>),
}

/// Which operation of a JSON 6902 patch failed, where, and on which object.
#[derive(Debug)]
pub struct PatchFailure {
    /// The patch file, or the kustomization holding the inline patch.
    pub patch: String,
    /// The operation's position in the patch (1-based).
    pub index: usize,
    /// `add`, `remove`, `replace`, `move`, `copy` or `test`.
    pub op: String,
    /// The operation's JSON pointer.
    pub path: String,
    /// The object the patch was applied to.
    pub target: String,
    pub message: String,
}

impl fmt::Display for PatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: operation {} (`{}` at `{}`) failed on {}: {}",
            self.patch, self.index, self.op, self.path, self.target, self.message
        )
    }
}

/// A line and column in a file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

impl RenderError {
    /// The same error with every file path prefixed by `root` (the directory the source's
    /// paths are relative to), for messages outside a repository.
    pub fn with_root(mut self, root: &str) -> RenderError {
        let root = root.trim_end_matches('/');
        let fix = |path: &mut String| {
            *path = if path.is_empty() {
                format!("{root}/")
            } else {
                format!("{root}/{path}")
            };
        };
        match &mut self {
            RenderError::Read { path, .. }
            | RenderError::Yaml { path, .. }
            | RenderError::Unsupported { path, .. }
            | RenderError::UnknownField { path, .. }
            | RenderError::InvalidField { path, .. }
            | RenderError::InvalidResource { path, .. }
            | RenderError::InvalidRemote { path, .. }
            | RenderError::RemoteDisabled { path, .. }
            | RenderError::Unpinned { path, .. }
            | RenderError::Fetch { path, .. }
            | RenderError::InRemote { path, .. } => fix(path),
            RenderError::NotFound { path, referrer } => {
                fix(path);
                fix(referrer);
            }
            RenderError::Restricted { referrer, .. } => fix(referrer),
            RenderError::Kustomization { dir, .. } => fix(dir),
            RenderError::Cycle { chain } => chain.iter_mut().for_each(fix),
            RenderError::Transform { kustomization, .. } => fix(kustomization),
            RenderError::JsonPatch(failure) => fix(&mut failure.patch),
        }
        self
    }

    /// A transformer, generator or patch error in the kustomization at `kustomization`.
    pub(crate) fn transform(kustomization: &str, message: impl Into<String>) -> Self {
        RenderError::Transform {
            kustomization: kustomization.to_string(),
            message: message.into(),
        }
    }
}
