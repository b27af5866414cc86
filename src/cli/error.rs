//! The one error type of the command line: its kind decides the exit code (docs/cli.md lists them).

use std::fmt;
use std::process::ExitCode;

/// How a command ended when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A gate or a promotion failed: exit 1.
    Failed,
    /// Bad input or usage: exit 2.
    BadInput,
    /// Blocked by policy (approval, window, soak): exit 3.
    Blocked,
}

impl ErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::BadInput => 2,
            ErrorKind::Blocked => 3,
        }
    }
}

/// An error reported to a person: a message, its causes, and hints they can act on.
#[derive(Debug)]
pub struct CliError {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    hints: Vec<String>,
}

impl CliError {
    /// An error of `kind` with a message of its own.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            hints: Vec::new(),
        }
    }

    /// Bad input or usage (exit 2).
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }

    /// A failed promotion or gate (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// Blocked by policy (exit 3).
    pub fn blocked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Blocked, message)
    }

    /// Wraps a domain error: its `Display` is the message, its sources the causes.
    pub fn from_error(
        kind: ErrorKind,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: String::new(),
            source: Some(Box::new(err)),
            hints: Vec::new(),
        }
    }

    /// Adds the cause of this error.
    pub fn with_source(mut self, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(err));
        self
    }

    /// Adds a hint a person can act on.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// The kind, which decides the exit code.
    #[cfg(test)]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_code())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.message.is_empty() {
            parts.push(self.message.clone());
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(err) = cause {
            parts.push(err.to_string());
            cause = err.source();
        }
        write!(f, "error: {}", parts.join(": "))?;
        for hint in &self.hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}
