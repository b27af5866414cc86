//! The API's write handlers: releases, promotions, reviews, rollback, pause and resume.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::app::{AppState, ServerEvent};
use super::body::Body;
use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use crate::access::Action;
use crate::policy::{Verdict, WindowOverride};
use crate::promotion::{
    Engine, Outcome, PromoteRequest, Promotion, PromotionError, PromotionState, RollbackRequest,
    Trigger,
};

/// `promotion` once it is past its policy check (or [`CHECK_WAIT`] has passed).
fn settled(engine: &Engine, mut promotion: Promotion) -> Result<Promotion, ApiError> {
    let deadline = Instant::now() + CHECK_WAIT;
    while matches!(
        promotion.state,
        PromotionState::Requested | PromotionState::Checking
    ) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
        promotion = engine.store()?.promotion(&promotion.id)?;
    }
    Ok(promotion)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(format!("failed to encode: {e}")))
}

/// How long a request waits for the service's own loop to finish checking a promotion it
/// reached first; far longer than a check takes, so only a wedged loop runs into it.
const CHECK_WAIT: Duration = Duration::from_secs(60);

/// The promotion a started promotion or rollback answers with, or why it did not start.
///
/// When the service's own loop moved the promotion on first (`Elsewhere`), the answer is
/// what that move reached: a promotion the loop is still checking is waited for, and one the
/// loop found blocked is as blocked as one this call found blocked.
fn accepted(engine: &Engine, outcome: Outcome) -> Result<Promotion, ApiError> {
    let outcome = match outcome {
        Outcome::Elsewhere(p) => match settled(engine, p)? {
            p if p.state == PromotionState::Blocked => Outcome::Blocked(p),
            p if p.state == PromotionState::Failed => Outcome::Failed(p),
            p if p.state == PromotionState::Aborted => Outcome::Aborted(p),
            p => Outcome::Elsewhere(p),
        },
        outcome => outcome,
    };
    match outcome {
        Outcome::Blocked(p) => {
            let lines: Vec<String> = p.blockers.iter().map(ToString::to_string).collect();
            let message = format!(
                "promotion {} of {} to {} is blocked: {}",
                p.id,
                p.revision,
                p.stage,
                lines.join("; ")
            );
            Err(ApiError::blocked(message, &p.id, p.blockers.clone()))
        }
        Outcome::Failed(p) => {
            let reason = p
                .error
                .clone()
                .unwrap_or_else(|| "a gate failed".to_string());
            let message = format!(
                "promotion {} of {} to {} failed: {reason}",
                p.id, p.revision, p.stage
            );
            Err(ApiError::failed(message, &p.id))
        }
        Outcome::Aborted(p) => Err(ApiError::conflict(format!(
            "promotion {} of {} to {} was aborted: {}",
            p.id,
            p.revision,
            p.stage,
            p.error.clone().unwrap_or_default()
        ))),
        Outcome::Succeeded(p) | Outcome::Verifying(p) | Outcome::Elsewhere(p) => Ok(p),
    }
}

/// A release to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Image name → reference: a tag (`1.4.2`), a digest (`sha256:…`) or `REPO:TAG[@DIGEST]`.
    #[schema(example = json!({"acme/web": "1.4.2"}))]
    images: BTreeMap<String, String>,
    /// The config commit shared files are read from (default: the source branch tip).
    commit: Option<String>,
    message: Option<String>,
}

/// Creates a revision; the same content again answers 200 with the same id.
#[utoipa::path(post, path = "/api/v1/releases", tag = "write", request_body = ReleaseBody,
    responses((status = 201, description = "created: `{\"id\": \"r-…\", …, \"created\": true}`", body = Object),
        (status = 200, description = "the same content exists: the same id", body = Object),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_release(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<ReleaseBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.images.is_empty() {
        return Err(ApiError::bad_request(
            Some("images"),
            "images must pin at least one image: {\"images\": {\"NAME\": \"REF\"}}",
        ));
    }
    let images: Vec<String> = body
        .images
        .iter()
        .map(|(name, reference)| format!("{name}={reference}"))
        .collect();
    let (revision, created) = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            caller.may(&config, Action::CreateRelease, None)?;
            let made = engine
                .create_release(&images, body.commit.as_deref(), body.message.as_deref())
                .map_err(|err| match err {
                    PromotionError::BadInput(m) => ApiError::bad_request(Some("images"), m),
                    other => other.into(),
                })?;
            Ok(made)
        })
        .await?;
    let mut value = to_json(&revision)?;
    value["created"] = created.into();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(value)))
}

/// A promotion to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteBody {
    pub(super) revision: String,
    pub(super) stage: String,
    /// Promote outside the stage's windows (only `overrideBy` users; needs `reason`).
    #[serde(default)]
    pub(super) override_window: bool,
    pub(super) reason: Option<String>,
}

/// Starts a promotion; it runs in the service (202). A blocked one is 409 with `blockers`.
#[utoipa::path(post, path = "/api/v1/promotions", tag = "write", request_body = PromoteBody,
    responses((status = 202, description = "the promotion, running in the service", body = Object),
        (status = 409, description = "`blocked` (with `blockers`), `busy` or `conflict`", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn promote(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PromoteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let window_override = match (body.override_window, &body.reason) {
        (false, _) => None,
        (true, Some(reason)) if !reason.trim().is_empty() => Some(WindowOverride {
            user: caller.name().to_string(),
            reason: reason.trim().to_string(),
        }),
        (true, _) => {
            return Err(ApiError::bad_request(
                Some("reason"),
                "override_window needs a reason (it is audited)",
            ));
        }
    };
    let promotion = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            engine.stage(&config, &body.stage)?;
            caller.may(&config, Action::Promote, Some(&body.stage))?;
            let _held = s.hold_stage(&body.stage);
            let request = PromoteRequest {
                revision: body.revision.clone(),
                stage: body.stage.clone(),
                trigger: Trigger::Manual,
                wait: false,
                window_override,
                abort_active: false,
            };
            accepted(&engine, engine.promote(&request)?)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(to_json(&promotion)?)))
}

/// A review of the revision waiting in a stage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub(super) revision: String,
    pub(super) comment: Option<String>,
    /// Take the caller's earlier review back.
    #[serde(default)]
    pub(super) withdraw: bool,
}

/// Approves a revision for a stage as the caller (the stage policy's `approvals.from`).
#[utoipa::path(post, path = "/api/v1/stages/{stage}/approvals", tag = "write", request_body = ReviewBody,
    params(("stage" = String, Path, description = "the stage")),
    responses((status = 200, description = "the review and what still blocks", body = Object),
        (status = 403, description = "self-approval, or not an approver: the reason", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn approve(
    state: State<Arc<AppState>>,
    caller: Caller,
    stage: Path<String>,
    body: Body<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    review(state, caller, stage, body, Verdict::Approve).await
}

/// Rejects a revision for a stage (or withdraws the caller's rejection).
#[utoipa::path(post, path = "/api/v1/stages/{stage}/rejections", tag = "write", request_body = ReviewBody,
    params(("stage" = String, Path, description = "the stage")),
    responses((status = 200, description = "the review and what still blocks", body = Object),
        (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reject(
    state: State<Arc<AppState>>,
    caller: Caller,
    stage: Path<String>,
    body: Body<ReviewBody>,
) -> Result<Json<Value>, ApiError> {
    review(state, caller, stage, body, Verdict::Reject).await
}

async fn review(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(stage): Path<String>,
    Body(body): Body<ReviewBody>,
    verdict: Verdict,
) -> Result<Json<Value>, ApiError> {
    let outcome = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            engine.stage(&config, &stage)?;
            Ok(engine.review(
                &stage,
                Some(&body.revision),
                verdict,
                body.comment.as_deref(),
                body.withdraw,
            )?)
        })
        .await?;
    Ok(Json(to_json(&outcome)?))
}

/// Why a promotion is aborted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortBody {
    /// Recorded with the abort (in the promotion's history and the audit log).
    reason: Option<String>,
}

/// Aborts an unfinished promotion: it ends without being verified and frees its stage.
#[utoipa::path(post, path = "/api/v1/promotions/{id}/abort", tag = "write", request_body = AbortBody,
    params(("id" = String, Path, description = "the promotion id, `p-…`")),
    responses((status = 200, description = "the aborted promotion", body = Object),
        (status = 403, description = "not a promoter of its stage, or it cannot be aborted now: the reason", body = ErrorBody),
        (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn abort(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<AbortBody>,
) -> Result<Json<Value>, ApiError> {
    let promotion = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            let stage = engine.store()?.promotion(&id)?.stage;
            caller.may(&config, Action::Promote, Some(&stage))?;
            Ok(engine.abort(&id, body.reason.as_deref())?)
        })
        .await?;
    Ok(Json(to_json(&promotion)?))
}

/// Which revision to roll back to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// A revision the stage verified before (default: the one before the current).
    pub(super) to: Option<String>,
}

/// Rolls a stage back: a forward promotion of a previously verified revision (202).
#[utoipa::path(post, path = "/api/v1/stages/{stage}/rollback", tag = "write", request_body = RollbackBody,
    params(("stage" = String, Path, description = "the stage")),
    responses((status = 202, description = "the rollback promotion", body = Object),
        (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(stage): Path<String>,
    Body(body): Body<RollbackBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let promotion = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            engine.stage(&config, &stage)?;
            caller.may(&config, Action::Rollback, Some(&stage))?;
            let _held = s.hold_stage(&stage);
            let request = RollbackRequest {
                stage: stage.clone(),
                to: body.to.clone(),
                wait: false,
                abort_active: false,
            };
            accepted(&engine, engine.rollback(&request)?)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(to_json(&promotion)?)))
}

/// Which stages to pause or resume, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// The stages (default: the whole pipeline).
    #[serde(default)]
    pub(super) stages: Vec<String>,
    /// Why (required to pause; shown to everyone waiting, and audited).
    #[serde(default)]
    pub(super) reason: String,
}

/// Stops the line: no promotion starts in the stages until resumed (admin).
#[utoipa::path(post, path = "/api/v1/pause", tag = "write", request_body = PauseBody,
    responses((status = 200, description = "what is paused now", body = Object),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn pause(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PauseBody>,
) -> Result<Json<Value>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            Some("reason"),
            "a pause needs a reason (it is audited)",
        ));
    }
    pause_or_resume(state, caller, body, true).await
}

/// Lets the line go again (admin).
#[utoipa::path(post, path = "/api/v1/resume", tag = "write", request_body = PauseBody,
    responses((status = 200, description = "what is still paused", body = Object),
        (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn resume(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<PauseBody>,
) -> Result<Json<Value>, ApiError> {
    pause_or_resume(state, caller, body, false).await
}

async fn pause_or_resume(
    state: Arc<AppState>,
    caller: Caller,
    body: PauseBody,
    pause: bool,
) -> Result<Json<Value>, ApiError> {
    let by = caller.name().to_string();
    let stages = body.stages.clone();
    let pauses = state
        .blocking(move |s| {
            let engine = s.engine(caller.actor())?;
            let config = s.config(&engine)?;
            let action = if pause { Action::Pause } else { Action::Resume };
            caller.may(&config, action, None)?;
            if pause {
                Ok(engine.pause(&config, &body.stages, &body.reason)?)
            } else {
                for stage in &body.stages {
                    engine.stage(&config, stage)?;
                }
                Ok(engine.resume(&config, &body.stages, &body.reason)?)
            }
        })
        .await?;
    let kind = if pause {
        "stage.paused"
    } else {
        "stage.resumed"
    };
    let mut event = ServerEvent::new(kind).by(&by);
    if !stages.is_empty() {
        event = event.stage(&stages.join(","));
    }
    state.changed(event);
    Ok(Json(to_json(&pauses)?))
}
