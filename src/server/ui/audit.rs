//! The audit page: the log, newest first, filterable by stage, with the result of checking
//! its hash chain.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::Viewer;
use super::page::{self, Section, time_tag};
use crate::server::app::AppState;

/// How many entries the page shows.
const SHOWN: usize = 500;

/// Which entries.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    stage: Option<String>,
}

/// `GET /audit`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    mut viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Response {
    let stage = query.stage.filter(|s| !s.trim().is_empty());
    let wanted = stage.clone();
    let read = crate::server::api::read(&state, viewer.caller.clone(), move |engine, config| {
        if let Some(stage) = &wanted {
            engine.stage(config, stage)?;
        }
        let store = engine.store()?;
        let entries = crate::promotion::audit_entries(&store, wanted.as_deref())?;
        let report = crate::promotion::verify_audit(&store)?;
        let stages: Vec<String> = config
            .pipeline
            .stages()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        Ok((entries, report, stages))
    })
    .await;
    let (entries, report, stages) = match read {
        Ok(read) => read,
        Err(err) => return viewer.error(&err),
    };
    let total = entries.len();
    let body = html! {
        h1 { "Audit log" }
        @match &report.broken {
            None => p.flash.ok #chain role="status" { "The hash chain checks out: " (report.entries) " entries." },
            Some((seq, why)) => p.flash.error #chain role="alert" { "The hash chain is broken at entry " (seq) ": " (why) },
        }
        form.filter method="get" action="/audit" {
            label for="audit-stage" { "Stage" }
            select #audit-stage name="stage" {
                option value="" { "every stage" }
                @for s in &stages { option value=(s) selected[stage.as_deref() == Some(s.as_str())] { (s) } }
            }
            button type="submit" { "Filter" }
        }
        p { "Showing " (total.min(SHOWN)) " of " (total) " entries, newest first." }
        table.audit #audit {
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" }
                th scope="col" { "Stage" } th scope="col" { "Revision" } th scope="col" { "Detail" }
            } }
            tbody {
                @for e in entries.iter().rev().take(SHOWN) {
                    tr {
                        td { (e.seq) }
                        td { (time_tag(&e.at)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { (e.stage.as_deref().unwrap_or("")) }
                        td { @if let Some(r) = &e.revision { code { (r) } } }
                        td.detail { @if !e.detail.is_null() { code { (e.detail.to_string()) } } }
                    }
                }
            }
        }
    };
    let frame = viewer.frame("Audit", Section::Audit);
    page::respond(StatusCode::OK, page::render(frame, body))
}
