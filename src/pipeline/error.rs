//! Errors about the pipeline, policy and group files: each names the file, the line and
//! column where known, the field, and what was expected.

use std::fmt;
use std::io;

/// Where in which file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocation {
    /// Repository-relative path of the file.
    pub path: String,
    /// 1-based line and column, when known.
    pub position: Option<(u64, u64)>,
}

impl FileLocation {
    /// A location in `path` without a known position.
    pub fn file(path: &str) -> Self {
        Self {
            path: path.to_string(),
            position: None,
        }
    }

    /// A location in `path` at `line`:`column` (1-based; 0 means unknown).
    pub fn at(path: &str, line: u64, column: u64) -> Self {
        let position = (line > 0).then_some((line, column));
        Self {
            path: path.to_string(),
            position,
        }
    }
}

impl fmt::Display for FileLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) if column > 0 => write!(f, "{}:{line}:{column}", self.path),
            Some((line, _)) => write!(f, "{}:{line}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// A pipeline, policy or group file that cannot be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("failed to read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is missing: {hint}")]
    Missing { path: String, hint: &'static str },
    #[error("{location}: {message}")]
    Parse {
        location: FileLocation,
        message: String,
    },
    #[error("{location}: {field}: {message}")]
    Invalid {
        location: FileLocation,
        field: String,
        message: String,
    },
    #[error("{path}: the stages form a cycle: {}", stages.join(" → "))]
    Cycle { path: String, stages: Vec<String> },
}

impl PipelineError {
    /// An invalid value of `field` at `location`.
    pub(crate) fn invalid(
        location: FileLocation,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PipelineError::Invalid {
            location,
            field: field.into(),
            message: message.into(),
        }
    }
}
