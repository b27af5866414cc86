//! The OpenAPI description of the API, generated from the handlers' annotations.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::app::AppState;
use super::caller::Caller;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::{api, events, health, hooks, metrics, writes};

#[derive(OpenApi)]
#[openapi(
    info(title = "ferry", description = "The HTTP API of `ferry serve`: every read and write the CLI has. Every route but /healthz, /readyz and the webhook takes `Authorization: Bearer TOKEN`."),
    paths(
        health::healthz, health::readyz, metrics::scrape,
        api::status, api::history, api::releases, api::release, api::plan, api::promotion,
        api::audit, api::audit_verify, api::dora, api::notifications,
        writes::create_release, writes::promote, writes::approve, writes::reject,
        writes::rollback, writes::abort, writes::pause, writes::resume,
        events::stream, hooks::git, document,
    ),
    components(schemas(ErrorBody, ErrorDetail, writes::ReleaseBody, writes::PromoteBody,
        writes::ReviewBody, writes::RollbackBody, writes::AbortBody, writes::PauseBody)),
    modifiers(&Bearer),
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3.1 description of the API.
pub fn description() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "read",
    responses((status = 200, description = "the OpenAPI description", body = Object)), security(("bearer" = [])))]
pub async fn document(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<utoipa::openapi::OpenApi>, ApiError> {
    api::read(&state, caller, |_, _| Ok(())).await?;
    Ok(Json(description()))
}
