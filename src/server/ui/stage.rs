//! The stage page — what the stage runs, what blocks it and what would unblock it, the exact
//! diff a promotion would apply (the content approvals are bound to), its history with gate
//! results — and the forms for what the viewer's role allows. The forms call the API's own
//! write handlers, so the UI refuses exactly what the API refuses.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::page::{self, Section, duration, state_class, time_tag};
use super::{Posted, Viewer};
use crate::access::Action;
use crate::pipeline::{Config, Requires};
use crate::policy::{Blocker, Review, Verdict, may_reject, may_review};
use crate::promotion::{Pauses, Plan, Promotion, Revision, StageStatus};
use crate::server::app::AppState;
use crate::server::body::Body;
use crate::server::caller::Caller;
use crate::server::error::ApiError;
use crate::server::writes::{self, PauseBody, PromoteBody, ReviewBody, RollbackBody};

/// How many promotions the page lists.
const HISTORY: usize = 25;
/// How many revisions the promote form offers.
const OFFERED: usize = 30;

/// Which revision to preview.
#[derive(Debug, Default, Deserialize)]
pub struct StageQuery {
    #[serde(default)]
    revision: Option<String>,
}

/// What the viewer may do here.
#[derive(Debug, Default)]
struct Allowed {
    promote: bool,
    rollback: bool,
    pause: bool,
    resume: bool,
    /// `Ok` when the viewer may approve the revision under review, else why not.
    approve: Option<Result<(), String>>,
    reject: bool,
}

/// Everything the page shows, read in one go.
struct StageView {
    name: String,
    upstream: Vec<String>,
    any: bool,
    policy: Option<String>,
    auto: bool,
    status: StageStatus,
    paused: Option<String>,
    history: Vec<Promotion>,
    /// The revision the review forms and the diff are about, and its plan (or why not).
    preview: Option<(String, Result<Plan, String>)>,
    offered: Vec<Revision>,
    rollback_to: Vec<String>,
    allowed: Allowed,
    user: String,
}

/// `GET /stages/{stage}`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    mut viewer: Viewer,
    Path(name): Path<String>,
    Query(query): Query<StageQuery>,
) -> Response {
    let caller = viewer.caller.clone();
    let read = crate::server::api::read(&state, caller.clone(), move |engine, config| {
        let stage = engine.stage(config, &name)?.clone();
        let status = engine
            .status(config)?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no stage {name}")))?;
        let history = engine.history(Some(&name), HISTORY)?;
        let waiting = history.first().filter(|p| !p.state.is_terminal());
        let preview_revision = query
            .revision
            .filter(|r| !r.trim().is_empty())
            .or_else(|| waiting.map(|p| p.revision.clone()));
        let preview = preview_revision.map(|rev| {
            let plan = engine
                .plan(&rev, &name)
                .map_err(|e| ApiError::from(e).message().to_string());
            (rev, plan)
        });
        let store = engine.store()?;
        let offered: Vec<Revision> = store.revisions()?.into_iter().take(OFFERED).collect();
        let record = store.stage(&name)?;
        let current = record.current.as_ref().map(|c| c.revision.clone());
        let mut rollback_to: Vec<String> = record
            .verified_revisions
            .iter()
            .rev()
            .map(|v| v.revision.clone())
            .filter(|r| Some(r) != current.as_ref())
            .collect();
        rollback_to.dedup();
        let pauses = engine.pauses()?;
        let requested_by = waiting.map_or("", |p| p.requested_by.as_str()).to_string();
        let allowed = allowed(&caller, config, &name, &requested_by);
        Ok(StageView {
            upstream: stage.upstream.clone(),
            any: stage.requires == Requires::Any && stage.upstream.len() > 1,
            policy: stage.policy.clone(),
            auto: stage.auto,
            paused: paused(&pauses, &name),
            status,
            history,
            preview,
            offered,
            rollback_to,
            allowed,
            user: caller.name().to_string(),
            name,
        })
    })
    .await;
    let view = match read {
        Ok(view) => view,
        Err(err) => return viewer.error(&err),
    };
    let title = view.name.clone();
    let body = body(&view, &viewer.csrf);
    let frame = viewer.frame(&title, Section::Pipeline);
    page::respond(StatusCode::OK, page::render(frame, body))
}

fn paused(pauses: &Pauses, stage: &str) -> Option<String> {
    let pause = pauses.stages.get(stage).or(pauses.all.as_ref())?;
    Some(format!("paused by {}: {}", pause.by, pause.reason))
}

/// The same decisions the API's handlers make, asked ahead to choose which forms to show.
fn allowed(caller: &Caller, config: &Config, stage: &str, requested_by: &str) -> Allowed {
    let may = |action, stage| caller.may(config, action, stage).is_ok();
    let rule = config
        .pipeline
        .stage(stage)
        .and_then(|s| config.policy_of(s))
        .and_then(|p| p.approvals.as_ref());
    let user = caller.name();
    Allowed {
        promote: may(Action::Promote, Some(stage)),
        rollback: may(Action::Rollback, Some(stage)),
        pause: may(Action::Pause, None),
        resume: may(Action::Resume, None),
        approve: rule.map(|rule| {
            may_review(rule, &config.groups, user, requested_by).map_err(|r| r.to_string())
        }),
        reject: rule.is_some_and(|rule| may_reject(rule, &config.groups, user).is_ok()),
    }
}

/// What would unblock `blocker`, for this viewer.
fn unblock(blocker: &Blocker, view: &StageView) -> String {
    match blocker {
        Blocker::Approvals { .. } => {
            let approved = view
                .status
                .reviews
                .iter()
                .any(|r| r.user == view.user && r.verdict == Verdict::Approve);
            match &view.allowed.approve {
                _ if approved => "you approved it already; another approver is needed".into(),
                Some(Ok(())) => "you can approve".into(),
                Some(Err(why)) => format!("you cannot approve: {why}"),
                None => "the stage's policy names the approvers".into(),
            }
        }
        Blocker::Upstream { missing, .. } => format!(
            "promote the revision to {} and let its gates pass there",
            missing.join(", ")
        ),
        Blocker::Soak { ready_at, .. } => format!(
            "nothing to do: it goes on by itself at {}",
            page::time(ready_at)
        ),
        Blocker::Window { .. } => {
            "nothing to do: it goes on by itself when the window opens".into()
        }
        Blocker::Freeze { .. } => "nothing to do: it goes on by itself when the freeze ends".into(),
        Blocker::Rejected { by, .. } => {
            format!("{by} can withdraw the rejection, or promote a different revision")
        }
        Blocker::Paused { .. } if view.allowed.resume => "you can resume the stage below".into(),
        Blocker::Paused { .. } => "an admin can resume the stage".into(),
        Blocker::Recorded { .. } => "recorded by an earlier ferry; it is checked again".into(),
    }
}

fn body(view: &StageView, csrf: &str) -> Markup {
    let s = &view.status;
    html! {
        h1 { "Stage " (view.name) }
        div #stage-status data-live="stage-status" {
            dl.facts {
                dt { "Revision" } dd #revision { @if let Some(r) = &s.revision { a href=(format!("/releases/{r}")) { code { (r) } } } @else { "none yet" } }
                dt { "Images" } dd { (s.images.as_deref().unwrap_or("—")) }
                dt { "Verified" } dd #verified { @if s.verified { "✓ verified" } @else { "not verified" } }
                dt { "State" } dd { span #state class=(format!("pill {}", state_class(s.state.as_str()))) { (s.state.as_str()) }
                    @if let Some(since) = &s.since { " since " (time_tag(since)) } }
                dt { "Output commit" } dd { code { (s.commit.as_deref().unwrap_or("—")) } }
                dt { "Upstream" } dd {
                    @if view.upstream.is_empty() { "none (an entry stage)" }
                    @for (i, u) in view.upstream.iter().enumerate() {
                        @if i > 0 { (if view.any { " or " } else { " and " }) }
                        a href=(format!("/stages/{u}")) { (u) }
                    }
                }
                dt { "Policy" } dd { (view.policy.as_deref().unwrap_or("none")) @if view.auto { " · promoted automatically" } }
                @if let Some(p) = &view.paused { dt { "Paused" } dd.error { (p) } }
            }
            (blockers(view))
            (reviews(&s.reviews))
        }
        div #stage-actions data-live="stage-actions" { (actions(view, csrf)) }
        (diff(view))
        div #stage-history data-live="stage-history" { (history(&view.history)) }
    }
}

fn blockers(view: &StageView) -> Markup {
    html! {
        section aria-labelledby="blockers-h" {
            h2 #blockers-h { "What blocks it" }
            @if view.status.blockers.is_empty() {
                p #no-blockers { "Nothing blocks this stage." }
            } @else {
                ul #blockers {
                    @for b in &view.status.blockers {
                        li data-kind=(b.kind()) { strong { (b.to_string()) } " — " (unblock(b, view)) }
                    }
                }
            }
        }
    }
}

fn reviews(reviews: &[Review]) -> Markup {
    html! {
        @if !reviews.is_empty() {
            section aria-labelledby="reviews-h" {
                h2 #reviews-h { "Reviews" }
                ul #reviews {
                    @for r in reviews {
                        li data-user=(r.user) {
                            strong { (r.user) } " "
                            (if r.verdict == Verdict::Approve { "approved" } else { "rejected" })
                            " at " (time_tag(&r.at))
                            @if let Some(c) = &r.comment { ": " q.comment { (c) } }
                        }
                    }
                }
            }
        }
    }
}

fn actions(view: &StageView, csrf: &str) -> Markup {
    let a = &view.allowed;
    let stage = &view.name;
    let review_revision = view.preview.as_ref().map(|(r, _)| r.as_str());
    let can_review = matches!(a.approve, Some(Ok(()))) || a.reject;
    html! {
        @if let (Some(rev), true) = (review_revision, can_review) {
            section aria-labelledby="review-h" {
                h2 #review-h { "Review " code { (rev) } }
                form.review method="post" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="revision" value=(rev);
                    label for="comment" { "Comment (optional)" }
                    textarea #comment name="comment" rows="2" {}
                    div.buttons {
                        @if matches!(a.approve, Some(Ok(()))) {
                            button #approve type="submit" formaction=(format!("/stages/{stage}/approve")) { "Approve" }
                        }
                        @if a.reject {
                            button.danger #reject type="submit" formaction=(format!("/stages/{stage}/reject")) { "Reject" }
                        }
                    }
                }
            }
        }
        @if a.promote && !view.offered.is_empty() {
            section aria-labelledby="promote-h" {
                h2 #promote-h { "Promote" }
                form method="post" action=(format!("/stages/{stage}/promote")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="promote-revision" { "Revision" }
                    select #promote-revision name="revision" {
                        @for r in &view.offered {
                            option value=(r.id) selected[Some(r.id.as_str()) == review_revision] {
                                (r.id) " — " (r.images_summary())
                            }
                        }
                    }
                    button #promote type="submit" { "Promote to " (stage) }
                }
            }
        }
        @if a.rollback && !view.rollback_to.is_empty() {
            section aria-labelledby="rollback-h" {
                h2 #rollback-h { "Roll back" }
                form method="post" action=(format!("/stages/{stage}/rollback")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="rollback-to" { "To the verified revision" }
                    select #rollback-to name="to" {
                        @for r in &view.rollback_to { option value=(r) { (r) } }
                    }
                    button.danger #rollback type="submit" { "Roll back" }
                }
            }
        }
        @if (a.pause && view.paused.is_none()) || (a.resume && view.paused.is_some()) {
            section aria-labelledby="pause-h" {
                h2 #pause-h { "Stop the line" }
                @if view.paused.is_none() {
                    form method="post" action=(format!("/stages/{stage}/pause")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="pause-reason" { "Reason" }
                        input #pause-reason type="text" name="reason" required;
                        button.danger #pause type="submit" { "Pause " (stage) }
                    }
                } @else {
                    form method="post" action=(format!("/stages/{stage}/resume")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="reason" value="resumed from the web UI";
                        button #resume type="submit" { "Resume " (stage) }
                    }
                }
            }
        }
    }
}

fn diff(view: &StageView) -> Markup {
    html! {
        section aria-labelledby="diff-h" #diff-section {
            h2 #diff-h { "What a promotion would change" }
            form.preview method="get" {
                label for="preview-revision" { "Preview revision" }
                select #preview-revision name="revision" {
                    @for r in &view.offered {
                        option value=(r.id) selected[view.preview.as_ref().is_some_and(|(p, _)| *p == r.id)] { (r.id) }
                    }
                }
                button type="submit" { "Show diff" }
            }
            @match &view.preview {
                None => p { "No promotion waits here; choose a revision to see what promoting it would change." },
                Some((_, Err(why))) => p.error { (why) },
                Some((rev, Ok(plan))) => {
                    p {
                        "Promoting " code { (rev) } " writes branch " code { (plan.branch) }
                        ": " (plan.added.len()) " added, " (plan.changed.len()) " changed, "
                        (plan.removed.len()) " removed. Approvals are bound to exactly this content ("
                        code #digest { (plan.digest) } ")."
                    }
                    @if plan.diff.is_empty() {
                        p #diff-empty { "The rendered manifests are the same as the stage has now." }
                    } @else {
                        pre.diff #diff tabindex="0" aria-label="Rendered diff" {
                            @for line in plan.diff.lines() {
                                @let class = if line.starts_with("+++") || line.starts_with("---") { "h" }
                                    else if line.starts_with('+') { "add" }
                                    else if line.starts_with('-') { "del" }
                                    else if line.starts_with("@@") { "hunk" } else { "ctx" };
                                span class=(class) { (line) }
                            }
                        }
                    }
                    @if !waits_for(view, rev) && !plan.notes.is_empty() {
                        p.hint { "If you requested this promotion now: " (plan.notes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")) }
                    }
                }
            }
        }
    }
}

/// Whether the stage's newest promotion is an unfinished one of `revision`.
fn waits_for(view: &StageView, revision: &str) -> bool {
    view.history
        .first()
        .is_some_and(|p| !p.state.is_terminal() && p.revision == revision)
}

fn history(history: &[Promotion]) -> Markup {
    html! {
        section aria-labelledby="history-h" {
            h2 #history-h { "History" }
            @if history.is_empty() { p { "No promotion yet." } } @else {
                table.history {
                    thead { tr {
                        th scope="col" { "Promotion" } th scope="col" { "Revision" } th scope="col" { "State" }
                        th scope="col" { "Trigger" } th scope="col" { "Requested" } th scope="col" { "Took" }
                        th scope="col" { "Gates" }
                    } }
                    tbody {
                        @for p in history {
                            tr data-promotion=(p.id) {
                                td { code { (p.id) } }
                                td { a href=(format!("/releases/{}", p.revision)) { code { (p.revision) } } }
                                td { span class=(format!("pill {}", state_class(p.state.as_str()))) { (p.state.as_str()) }
                                    @if let Some(e) = &p.error { div.why { (e) } } }
                                td { (format!("{:?}", p.trigger).to_lowercase()) @if p.rollback { " (rollback)" } }
                                td { (p.requested_by) ", " (time_tag(&p.requested_at)) }
                                td { (duration(&p.requested_at, &p.updated_at())) }
                                td {
                                    @for g in &p.gates {
                                        div.gate {
                                            strong { (g.name) } " " (format!("{:?}", g.status).to_lowercase())
                                            " in " (duration(&g.started_at, &g.finished_at)) ": " (g.reason)
                                        }
                                    }
                                    @if !p.approved_by.is_empty() { div { "approved by " (p.approved_by.join(", ")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The review form's fields.
#[derive(Deserialize)]
pub struct ReviewForm {
    revision: String,
    #[serde(default)]
    comment: Option<String>,
}

fn comment(text: Option<String>) -> Option<String> {
    text.map(|c| c.trim().to_string()).filter(|c| !c.is_empty())
}

fn remaining(value: &Value) -> String {
    let blockers: Vec<Blocker> = value
        .get("blockers")
        .and_then(|b| serde_json::from_value(b.clone()).ok())
        .unwrap_or_default();
    if blockers.is_empty() {
        return "nothing blocks it any more".to_string();
    }
    let lines: Vec<String> = blockers.iter().map(ToString::to_string).collect();
    format!("still: {}", lines.join("; "))
}

/// `POST /stages/{stage}/approve`: the API's approval, as the signed-in viewer.
pub async fn approve(
    state: State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<ReviewForm>,
) -> Response {
    review(state, stage, posted, Verdict::Approve).await
}

/// `POST /stages/{stage}/reject`.
pub async fn reject(
    state: State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<ReviewForm>,
) -> Response {
    review(state, stage, posted, Verdict::Reject).await
}

async fn review(
    State(state): State<Arc<AppState>>,
    stage: String,
    posted: Posted<ReviewForm>,
    verdict: Verdict,
) -> Response {
    let body = ReviewBody {
        revision: posted.form.revision.clone(),
        comment: comment(posted.form.comment.clone()),
        withdraw: false,
    };
    let caller = posted.viewer.caller.clone();
    let path = Path(stage.clone());
    let outcome = match verdict {
        Verdict::Approve => writes::approve(State(state.clone()), caller, path, Body(body)).await,
        Verdict::Reject => writes::reject(State(state.clone()), caller, path, Body(body)).await,
    };
    let verb = if verdict == Verdict::Approve {
        "approved"
    } else {
        "rejected"
    };
    let revision = &posted.form.revision;
    let outcome =
        outcome.map(|Json(v)| format!("You {verb} {revision} for {stage}; {}.", remaining(&v)));
    posted.done(&state, &format!("/stages/{stage}"), outcome)
}

/// The promote form's fields.
#[derive(Deserialize)]
pub struct PromoteForm {
    revision: String,
}

/// `POST /stages/{stage}/promote`: the API's promotion request.
pub async fn promote(
    State(state): State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<PromoteForm>,
) -> Response {
    let body = PromoteBody {
        revision: posted.form.revision.clone(),
        stage: stage.clone(),
        override_window: false,
        reason: None,
    };
    let caller = posted.viewer.caller.clone();
    let outcome = writes::promote(State(state.clone()), caller, Body(body))
        .await
        .map(|(_, Json(p))| started("Promotion", &p));
    let revision = &posted.form.revision;
    let to = if revision
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        format!("/stages/{stage}?revision={revision}")
    } else {
        format!("/stages/{stage}")
    };
    posted.done(&state, &to, outcome)
}

fn started(what: &str, promotion: &Value) -> String {
    format!(
        "{what} {} of {} to {} started ({}).",
        promotion["id"].as_str().unwrap_or("?"),
        promotion["revision"].as_str().unwrap_or("?"),
        promotion["stage"].as_str().unwrap_or("?"),
        promotion["state"].as_str().unwrap_or("?"),
    )
}

/// The rollback form's fields.
#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    to: Option<String>,
}

/// `POST /stages/{stage}/rollback`.
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<RollbackForm>,
) -> Response {
    let body = RollbackBody {
        to: posted.form.to.clone().filter(|t| !t.trim().is_empty()),
    };
    let caller = posted.viewer.caller.clone();
    let outcome = writes::rollback(
        State(state.clone()),
        caller,
        Path(stage.clone()),
        Body(body),
    )
    .await
    .map(|(_, Json(p))| started("Rollback", &p));
    posted.done(&state, &format!("/stages/{stage}"), outcome)
}

/// The pause and resume forms' fields.
#[derive(Deserialize)]
pub struct PauseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /stages/{stage}/pause` (admins).
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<PauseForm>,
) -> Response {
    pause_or_resume(state, stage, posted, false).await
}

/// `POST /stages/{stage}/resume` (admins).
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Path(stage): Path<String>,
    posted: Posted<PauseForm>,
) -> Response {
    pause_or_resume(state, stage, posted, true).await
}

/// Pauses `stage`, or resumes it, through the API's own handler.
async fn pause_or_resume(
    state: Arc<AppState>,
    stage: String,
    posted: Posted<PauseForm>,
    resume: bool,
) -> Response {
    let body = PauseBody {
        stages: vec![stage.clone()],
        reason: posted.form.reason.clone(),
    };
    let caller = posted.viewer.caller.clone();
    let outcome = if resume {
        writes::resume(State(state.clone()), caller, Body(body))
            .await
            .map(|_| format!("Resumed {stage}."))
    } else {
        writes::pause(State(state.clone()), caller, Body(body))
            .await
            .map(|_| format!("Paused {stage}: no promotion starts there until it is resumed."))
    };
    posted.done(&state, &format!("/stages/{stage}"), outcome)
}
