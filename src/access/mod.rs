//! Who is calling and what they may do: bearer tokens (kept hashed in the state store), OIDC
//! ID tokens from the issuers `policies/access.yaml` lists, and the roles that file grants.
//! jsonwebtoken is used only here.
//!
//! [`Authenticator::authenticate`] turns a bearer token into an [`Identity`]; [`may`] decides,
//! without I/O, whether that identity may take an [`Action`]. Who may *approve* is not decided
//! here: that is the stage policy's `approvals.from`, matched against the identity.

mod authenticator;
mod authorize;
mod error;
mod identity;
mod oidc;
mod token;

pub use authenticator::Authenticator;
pub use authorize::{Action, Denied, may};
pub use error::{AccessError, AuthError};
pub use identity::{AuthMethod, Identity};
pub use token::{
    NewToken, TOKEN_KEY_PREFIX, TOKEN_PREFIX, TokenRecord, TokenSecret, TokenState, check_user,
    create_token, list_tokens, revoke_token, verify_token,
};

pub use crate::pipeline::{AccessPolicy, Role};
