//! Authentication as an extractor: every API route takes a [`Caller`], so a route without
//! authentication does not compile. Authorization is `access::may`, asked through
//! [`Caller::may`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::Method;
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

impl Caller {
    /// The caller a bearer token authenticates, checked as every API request is.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
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

/// A web UI session's token, for a request without `Authorization` that only reads (`GET`,
/// `HEAD`): so a browser's `EventSource` and pages can read the API. Requests that change
/// state still need the bearer token (the session's CSRF token guards only the UI's forms).
fn session_token(parts: &Parts, state: &AppState) -> Option<String> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    let id = super::ui::session_id(parts)?;
    state.sessions.token(&id, chrono::Utc::now())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return match session_token(parts, state) {
                Some(token) => Caller::from_token(state, &token).await,
                None => Err(ApiError::unauthenticated(
                    "this request needs `Authorization: Bearer TOKEN`",
                )),
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer TOKEN`")
            })?;
        Caller::from_token(state, token).await
    }
}
