//! Authentication as an extractor: every API route takes a [`Caller`], so a route without
//! authentication does not compile. Authorization is `access::may`, asked through
//! [`Caller::may`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::app::AppState;
use super::error::ApiError;
use crate::access::{Action, AuthMethod, Identity, may};
use crate::pipeline::Config;
use crate::promotion::{Actor, Auth};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl Caller {
    /// The name the caller acts as.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The caller as the engine records it: its name and how it was authenticated.
    pub fn actor(&self) -> Actor {
        let auth = match &self.0.auth {
            AuthMethod::Token { id } => Auth::Token { id: id.clone() },
            AuthMethod::Oidc { issuer } => Auth::Oidc {
                issuer: issuer.clone(),
            },
        };
        Actor {
            name: self.0.name.clone(),
            auth,
        }
    }

    /// Refuses with 403 and the reason unless the caller may take `action` (in `stage`).
    pub fn may(
        &self,
        config: &Config,
        action: Action,
        stage: Option<&str>,
    ) -> Result<(), ApiError> {
        may(&config.access, &self.0, &config.groups, action, stage)
            .map_err(|denied| ApiError::forbidden(denied.to_string()))
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated("this request needs `Authorization: Bearer TOKEN`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer TOKEN`")
            })?;
        let identity = state
            .authenticator
            .authenticate(token)
            .await
            .map_err(|err| {
                if err.is_unavailable() {
                    ApiError::unavailable(crate::promotion::error_chain(&err))
                } else {
                    ApiError::unauthenticated(err.to_string())
                }
            })?;
        Ok(Caller(identity))
    }
}
