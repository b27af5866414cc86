//! Why a gate could not make an observation.

use std::error::Error as _;
use std::path::PathBuf;

use crate::cluster::ClusterError;

/// A failure to observe: the gate reports it as an `Error` observation and retries (or,
/// for a definitive error such as a bad query, ends as errored).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("failed to build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("header {header}: environment variable {var} is not set")]
    MissingEnv { header: String, var: String },
    #[error("header {header}: not a valid HTTP header")]
    InvalidHeader { header: String },
    #[error("failed to reach {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    ServerError { url: String, status: u16 },
    #[error("{url} did not answer with JSON")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("query failed ({error_type}): {message}")]
    Query { error_type: String, message: String },
    #[error("unexpected answer from {url}: {problem}")]
    Unexpected { url: String, problem: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("failed to start {program} in {}", dir.display())]
    Spawn {
        program: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to wait for {program}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer before the gate's timeout")]
    NoAnswer,
}

impl GateError {
    /// A failed request to `url` (the URL is named once, not again in the cause).
    pub(crate) fn request(url: &str, source: reqwest::Error) -> GateError {
        GateError::Request {
            url: url.to_string(),
            source: source.without_url(),
        }
    }

    /// The message with its causes, as one line: `failed to reach URL: error sending request: …`.
    pub fn reason(&self) -> String {
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !cause_text.is_empty() && !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_carries_the_causes_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let err = GateError::Spawn {
            program: "./e2e.sh".into(),
            dir: "/repo".into(),
            source: io,
        };
        assert_eq!(
            err.reason(),
            "failed to start ./e2e.sh in /repo: No such file or directory (os error 2)"
        );
    }
}
