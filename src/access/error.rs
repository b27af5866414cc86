//! The errors of `access`: managing tokens, and authenticating a caller. Neither ever
//! carries a token's secret.

use crate::state::StateError;

/// A token could not be created, listed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("failed to use the token store")]
    Store(#[from] StateError),
    #[error("no token with id `{id}`")]
    UnknownToken { id: String },
    #[error("`{user}` is not a user name: {reason}")]
    BadUser { user: String, reason: &'static str },
    #[error("failed to draw random bytes for a token: {reason}")]
    Random { reason: String },
}

/// A bearer token that does not establish an identity. The message is safe to show the
/// caller: it names the token's id or the issuer, never the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token is neither a ferry token (ferry_…) nor an OIDC ID token")]
    Malformed,
    #[error("the token is not valid (unknown, or its secret does not match)")]
    InvalidToken,
    #[error("token {id} expired at {at}")]
    Expired { id: String, at: String },
    #[error("token {id} was revoked at {at}")]
    Revoked { id: String, at: String },
    #[error(
        "ID tokens from issuer `{issuer}` are not accepted: it is not listed in policies/access.yaml"
    )]
    UnknownIssuer { issuer: String },
    #[error("the ID token from `{issuer}` is not valid: {reason}")]
    InvalidIdToken { issuer: String, reason: String },
    #[error(
        "the ID token from `{issuer}` has no claim `{claim}`, which its identity template needs"
    )]
    MissingClaim { issuer: String, claim: String },
    #[error("failed to fetch the signing keys of issuer `{issuer}`: {reason}")]
    Keys { issuer: String, reason: String },
    #[error("failed to read the token store")]
    Store(#[source] StateError),
}

impl AuthError {
    /// Whether the failure is ferry's (the state store, an issuer that cannot be reached)
    /// rather than the caller's: a server answers 503 for these, 401 for the rest.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Keys { .. } | AuthError::Store(_))
    }
}
