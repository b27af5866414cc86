//! Who acts on the engine, and how they were authenticated: what promotions, reviews and the
//! audit log record about the caller.

use serde::{Deserialize, Serialize};

/// The caller of one engine operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The identity policies match against (`alice`, `oidc:repo:acme/web:ref:refs/heads/main`).
    pub name: String,
    /// How the identity was established.
    pub auth: Auth,
}

/// How an [`Actor`] was authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Auth {
    /// A local command: the name came from `--as`, `FERRY_USER` or the OS user.
    Local,
    /// An API token, by its id (never the token itself).
    Token { id: String },
    /// An OIDC ID token from `issuer`.
    Oidc { issuer: String },
}

impl Actor {
    /// A local user.
    pub fn local(name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            auth: Auth::Local,
        }
    }
}
