//! Parsing YAML files into the raw serde types, with errors that name file, line and column.

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

use super::error::{FileLocation, PipelineError};
use crate::overlay::FileSource;

/// Reads `path` from `source` and parses it as one YAML document of type `T`.
pub(crate) fn load<T: DeserializeOwned>(
    source: &dyn FileSource,
    path: &str,
) -> Result<T, PipelineError> {
    let bytes = source.read(path).map_err(|source| PipelineError::Read {
        path: path.to_string(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses `bytes` (the content of `path`) as one YAML document of type `T`.
pub(crate) fn parse<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, PipelineError> {
    serde_saphyr::from_slice(bytes).map_err(|err| {
        let location = match err.location() {
            Some(loc) => FileLocation::at(path, loc.line(), loc.column()),
            None => FileLocation::file(path),
        };
        PipelineError::Parse {
            location,
            message: plain_message(&err),
        }
    })
}

/// The location of a spanned value in `path`.
pub(crate) fn at<T>(path: &str, value: &Spanned<T>) -> FileLocation {
    FileLocation::at(path, value.referenced.line(), value.referenced.column())
}

/// The error's message without the position suffix and source snippet serde-saphyr adds
/// (the position is reported separately, in front).
fn plain_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    match first.rfind(" at line ") {
        Some(idx) => first[..idx].to_string(),
        None => first.to_string(),
    }
}
