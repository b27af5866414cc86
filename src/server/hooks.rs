//! `POST /api/v1/hooks/git`: a push delivery from GitHub, GitLab or Gitea. Its signature is
//! its authentication; a verified delivery fetches the source branch and wakes the loop.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::app::{AppState, ServerEvent, loop_actor};
use super::body::RawBody;
use super::error::{ApiError, ErrorBody};
use super::signature::verify;
use crate::gitstore::FastForward;

/// Accepts a signed push delivery (202); unsigned or badly signed is 401 and changes nothing.
#[utoipa::path(post, path = "/api/v1/hooks/git", tag = "write",
    request_body(content = Object, description = "the forge's push payload"),
    responses((status = 202, description = "accepted: the source is fetched and the loop woken", body = Object),
        (status = 401, description = "unsigned or a signature that does not match", body = ErrorBody)))]
pub async fn git(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let forge = verify(&headers, &body, state.webhook_secret.as_deref())
        .map_err(|err| ApiError::unauthenticated(err.to_string()))?;
    let pushed_ref = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("ref").and_then(Value::as_str).map(str::to_string));
    let fetched = match &state.remote {
        Some(_) => state.blocking(fetch).await?,
        None => Fetched::default(),
    };
    let mut event = ServerEvent::new("source.pushed").by(forge.name());
    if let Some(tip) = &fetched.tip {
        event = event.revision(tip);
    }
    state.changed(event);
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"accepted": true, "forge": forge.name(), "ref": pushed_ref, "fetched": fetched.tip, "moved": fetched.moved}),
        ),
    ))
}

/// What a fetch of the source branch found.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The remote's tip of the source branch, if it has the branch.
    pub tip: Option<String>,
    /// Whether the local source branch moved forward to it.
    pub moved: bool,
}

/// Fetches the source branch from the remote and moves the local source branch forward to
/// it (a fast-forward only: a local branch with commits of its own stays, with a warning).
pub fn fetch(state: &AppState) -> Result<Fetched, ApiError> {
    let Some(remote) = &state.remote else {
        return Ok(Fetched::default());
    };
    let engine = state.engine(loop_actor())?;
    let git = engine.git();
    let tip = git
        .fetch_branch(remote, &state.source_branch)
        .map_err(crate::promotion::PromotionError::from)?;
    let moved = match git
        .fast_forward(remote, &state.source_branch)
        .map_err(crate::promotion::PromotionError::from)?
    {
        FastForward::UpToDate => false,
        FastForward::Moved { from, to } => {
            tracing::info!(branch = %state.source_branch, %from, %to, "source branch moved forward");
            true
        }
        FastForward::Diverged {
            local,
            remote: theirs,
        } => {
            tracing::warn!(
                branch = %state.source_branch,
                %local,
                remote = %theirs,
                "the local source branch has commits {remote} lacks; it is not moved"
            );
            false
        }
    };
    Ok(Fetched { tip, moved })
}
