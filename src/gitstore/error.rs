//! The one error type of the git store.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A git store operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GitStoreError {
    #[error("failed to open git repository at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: gix::Error,
    },
    #[error("unknown revision `{rev}`: no branch, tag or commit of that name")]
    UnknownRev {
        rev: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to resolve revision `{rev}`")]
    Resolve {
        rev: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to read reference {ref_name}")]
    ReadRef {
        ref_name: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to read commit {commit}")]
    ReadCommit {
        commit: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to read {path} in commit {commit}")]
    ReadTree {
        commit: String,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid branch name `{branch}`: {reason}")]
    InvalidBranch { branch: String, reason: String },
    #[error("invalid remote name `{remote}`")]
    InvalidRemote { remote: String },
    #[error("invalid commit id `{commit}`: expected a full hexadecimal object id")]
    InvalidCommitId { commit: String },
    #[error("invalid path `{path}` in the files to commit: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("invalid commit message: {reason}")]
    InvalidMessage { reason: &'static str },
    #[error("invalid trailer `{key}`: {reason}")]
    InvalidTrailer { key: String, reason: &'static str },
    #[error("failed to write branch {branch}: it is checked out in a working tree")]
    BranchCheckedOut { branch: String },
    #[error("failed to write objects for branch {branch}")]
    WriteObjects {
        branch: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to update {ref_name}")]
    UpdateRef {
        ref_name: String,
        #[source]
        source: gix::Error,
    },
    #[error("failed to push {branch} to {remote}: branch {branch} does not exist")]
    NothingToPush { remote: String, branch: String },
    #[error("failed to run git {action} for {remote}")]
    Spawn {
        action: &'static str,
        remote: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to {action} {branch} with remote {remote}: {stderr}")]
    Remote {
        action: &'static str,
        remote: String,
        branch: String,
        stderr: String,
    },
    #[error("failed to {action} {url}: {stderr}")]
    RemoteBase {
        action: &'static str,
        url: String,
        stderr: String,
    },
    #[error(
        "failed to {action} {url}: git did not finish within {}s (a slower remote needs \
         `timeout=` in the URL's query, e.g. `?ref=v1&timeout=120`)",
        timeout.as_secs_f64()
    )]
    RemoteTimeout {
        action: &'static str,
        url: String,
        timeout: Duration,
    },
    #[error("failed to find `{reference}` in {url}: {hint}")]
    UnknownRemoteRef {
        url: String,
        reference: String,
        hint: &'static str,
    },
    #[error("failed to write the remote base cache in {path}")]
    RemoteCache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
