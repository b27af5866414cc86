//! The release pages: every revision, and one revision's path through the pipeline — stage by
//! stage, when it was requested and verified there, and the lead time from its creation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::Viewer;
use super::page::{self, Section, duration, state_class, time_tag};
use crate::promotion::{Promotion, Revision};
use crate::server::app::AppState;

/// How many revisions the list shows.
const LISTED: usize = 200;
/// How many promotions of each stage are searched for the revision's.
const SEARCHED: usize = 200;

/// Where a revision is in one stage.
struct Where {
    stage: String,
    promotion: Option<Promotion>,
    verified_at: Option<DateTime<Utc>>,
    current: bool,
}

/// `GET /releases`.
pub async fn list(State(state): State<Arc<AppState>>, mut viewer: Viewer) -> Response {
    let read = crate::server::api::read(&state, viewer.caller.clone(), |engine, _| {
        let all = engine.store()?.revisions()?;
        let total = all.len();
        Ok((
            all.into_iter().take(LISTED).collect::<Vec<Revision>>(),
            total,
        ))
    })
    .await;
    let (revisions, total) = match read {
        Ok(read) => read,
        Err(err) => return viewer.error(&err),
    };
    let body = html! {
        h1 { "Releases" }
        p { (revisions.len()) " of " (total) " revisions, newest first." }
        @if revisions.is_empty() { p { "No release yet." } } @else {
            table.releases {
                thead { tr { th scope="col" { "Revision" } th scope="col" { "Images" } th scope="col" { "Created" } th scope="col" { "Message" } } }
                tbody {
                    @for r in &revisions {
                        tr {
                            th scope="row" { a href=(format!("/releases/{}", r.id)) { code { (r.id) } } }
                            td { (r.images_summary()) }
                            td { (r.created_by) ", " (time_tag(&r.created_at)) }
                            td { (r.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    let frame = viewer.frame("Releases", Section::Releases);
    page::respond(StatusCode::OK, page::render(frame, body))
}

/// `GET /releases/{id}`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    mut viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let read = crate::server::api::read(&state, viewer.caller.clone(), move |engine, config| {
        let store = engine.store()?;
        let revision = store.revision(&id)?;
        let mut path = Vec::new();
        for stage in config.pipeline.topological() {
            let record = store.stage(&stage.name)?;
            let promotion = store
                .promotions(Some(&stage.name), SEARCHED)?
                .into_iter()
                .find(|p| p.revision == revision.id);
            path.push(Where {
                stage: stage.name.clone(),
                promotion,
                verified_at: record.verified_at(&revision.id),
                current: record
                    .current
                    .as_ref()
                    .is_some_and(|c| c.revision == revision.id),
            });
        }
        Ok((revision, path))
    })
    .await;
    let (revision, path) = match read {
        Ok(read) => read,
        Err(err) => return viewer.error(&err),
    };
    let title = revision.id.clone();
    let body = body(&revision, &path);
    let frame = viewer.frame(&title, Section::Releases);
    page::respond(StatusCode::OK, page::render(frame, body))
}

fn body(revision: &Revision, path: &[Where]) -> Markup {
    html! {
        h1 { "Release " code { (revision.id) } }
        dl.facts {
            dt { "Images" } dd {
                ul.plain { @for pin in revision.images.values() { li { code { (pin.reference()) } } } }
            }
            dt { "Config commit" } dd { code #config-commit { (revision.config_commit) } " on " (revision.source_branch) }
            dt { "Created" } dd { (revision.created_by) ", " (time_tag(&revision.created_at)) }
            @if let Some(m) = &revision.message { dt { "Message" } dd { (m) } }
        }
        div data-live="release-path" #release-path {
            h2 { "Where it is" }
            table.path {
                thead { tr {
                    th scope="col" { "Stage" } th scope="col" { "State" } th scope="col" { "Requested" }
                    th scope="col" { "Verified" } th scope="col" { "Lead time (created → verified)" }
                } }
                tbody {
                    @for w in path {
                        tr data-stage=(w.stage) {
                            th scope="row" { a href=(format!("/stages/{}", w.stage)) { (w.stage) } @if w.current { " (current)" } }
                            td { @match &w.promotion {
                                Some(p) => span class=(format!("pill {}", state_class(p.state.as_str()))) { (p.state.as_str()) },
                                None => "not promoted",
                            } }
                            td { @if let Some(p) = &w.promotion { (time_tag(&p.requested_at)) } @else { "—" } }
                            td { @if let Some(at) = &w.verified_at { (time_tag(at)) } @else { "—" } }
                            td.lead { @if let Some(at) = &w.verified_at { (duration(&revision.created_at, at)) } @else { "—" } }
                        }
                    }
                }
            }
        }
    }
}
