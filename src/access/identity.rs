//! An authenticated caller: a name, and how it proved it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who is calling, as established by a bearer token or an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The name roles, groups and `approvals.from` are matched against: a token's user, or the
    /// identity an issuer's template builds from an ID token (`oidc:…`).
    pub name: String,
    pub auth: AuthMethod,
}

/// How an identity was authenticated; recorded with everything it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum AuthMethod {
    /// A ferry bearer token, by its id (never its secret).
    Token { id: String },
    /// An OIDC ID token from this issuer.
    Oidc { issuer: String },
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Token { id } => write!(f, "token {id}"),
            AuthMethod::Oidc { issuer } => write!(f, "oidc {issuer}"),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.auth)
    }
}

impl From<Identity> for crate::promotion::Actor {
    /// The engine's actor for an authenticated identity: its name, and its token id or issuer.
    fn from(identity: Identity) -> Self {
        use crate::promotion::Auth;
        let auth = match identity.auth {
            AuthMethod::Token { id } => Auth::Token { id },
            AuthMethod::Oidc { issuer } => Auth::Oidc { issuer },
        };
        crate::promotion::Actor {
            name: identity.name,
            auth,
        }
    }
}
