//! The web UI, served at `/`: server-rendered pages (maud) that read through the same engine
//! calls and authorization as the API, and forms that call the API's own write handlers, so a
//! button does exactly what the matching API request does. A small stylesheet and script of
//! the project's own are embedded; pages read without JavaScript, and the script adds live
//! updates from `GET /api/v1/events` (the session cookie authenticates that stream).
//!
//! Sessions and CSRF: see [`session`]. Every POST handler takes a [`Posted`] form, which
//! refuses (403) a request whose `csrf` field is not the session's token.

mod audit;
mod graph;
mod layout;
mod page;
mod pipeline;
mod release;
pub mod session;
mod stage;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::app::AppState;
use super::caller::Caller;
use super::error::ApiError;
use page::{Frame, Section};
use session::{Flash, LOGIN_COOKIE, SESSION_COOKIE, cookie_value, same_token};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// The UI's routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pipeline::page))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/stages/{stage}", get(stage::page))
        .route("/stages/{stage}/promote", post(stage::promote))
        .route("/stages/{stage}/approve", post(stage::approve))
        .route("/stages/{stage}/reject", post(stage::reject))
        .route("/stages/{stage}/rollback", post(stage::rollback))
        .route("/stages/{stage}/pause", post(stage::pause))
        .route("/stages/{stage}/resume", post(stage::resume))
        .route("/releases", get(release::list))
        .route("/releases/{id}", get(release::page))
        .route("/audit", get(audit::page))
        .route("/ui/style.css", get(style))
        .route("/ui/app.js", get(script))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The signed-in person of a page request: who they are (authenticated again from the
/// session's token, exactly as a bearer token is), the session's CSRF token and its flash.
/// Without a session, pages redirect to the login form.
pub struct Viewer {
    pub caller: Caller,
    pub session: String,
    pub csrf: String,
    pub flash: Option<Flash>,
}

impl Viewer {
    /// The frame of a page this viewer sees.
    fn frame<'a>(&'a mut self, title: &'a str, section: Section) -> Frame<'a> {
        Frame {
            title,
            section,
            user: Some((self.caller.name(), &self.csrf)),
            flash: self.flash.take(),
        }
    }

    /// An error page for this viewer.
    fn error(&self, err: &ApiError) -> Response {
        page::error_page(
            err.status(),
            err.message(),
            Some((self.caller.name(), &self.csrf)),
        )
    }
}

/// Why a UI request has no viewer.
pub enum NoViewer {
    /// Not signed in (or the session ended): go to the login form.
    SignIn,
    /// The session's token no longer authenticates anyone, or the service cannot check it.
    Refused(ApiError),
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::SignIn => Redirect::to("/login").into_response(),
            NoViewer::Refused(err) => page::error_page(err.status(), err.message(), None),
        }
    }
}

/// The session id a request's cookie names, if any.
pub fn session_id(parts: &Parts) -> Option<String> {
    let header = parts.headers.get(header::COOKIE)?.to_str().ok()?;
    cookie_value(header, SESSION_COOKIE).map(str::to_string)
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Viewer, NoViewer> {
        let id = session_id(parts).ok_or(NoViewer::SignIn)?;
        let session = state
            .sessions
            .take(&id, Utc::now())
            .ok_or(NoViewer::SignIn)?;
        let caller = match Caller::from_token(state, &session.token).await {
            Ok(caller) => caller,
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => {
                state.sessions.close(&id);
                return Err(NoViewer::SignIn);
            }
            Err(err) => return Err(NoViewer::Refused(err)),
        };
        Ok(Viewer {
            caller,
            session: id,
            csrf: session.csrf,
            flash: session.flash,
        })
    }
}

/// A submitted form of a signed-in viewer whose `csrf` field matched the session's token;
/// the other fields decode into `T`. Without a session or without the right token: 403.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = match Viewer::from_request_parts(&mut parts, state).await {
            Ok(viewer) => viewer,
            Err(NoViewer::SignIn) => {
                return Err(page::error_page(
                    StatusCode::FORBIDDEN,
                    "this form needs a signed-in session: sign in and try again",
                    None,
                ));
            }
            Err(other) => return Err(other.into_response()),
        };
        let req = Request::from_parts(parts, body);
        let fields = match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(axum::Form(fields)) => fields,
            Err(rejection) => {
                let err = ApiError::bad_request(None, rejection.body_text());
                return Err(viewer.error(&err));
            }
        };
        let given = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str());
        if !same_token(&viewer.csrf, given) {
            let err = ApiError::forbidden(
                "the form's CSRF token is missing or wrong: reload the page and try again",
            );
            return Err(viewer.error(&err));
        }
        let object: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        match serde_json::from_value(serde_json::Value::Object(object)) {
            Ok(form) => Ok(Posted { viewer, form }),
            Err(err) => {
                let err = ApiError::bad_request(None, format!("the form is not valid: {err}"));
                Err(viewer.error(&err))
            }
        }
    }
}

impl<T> Posted<T> {
    /// After an action: leave its outcome for the next page and go to `to` (303). A blocked
    /// promotion is an outcome to show; any other error is answered with its status.
    fn done(&self, state: &AppState, to: &str, outcome: Result<String, ApiError>) -> Response {
        let flash = match outcome {
            Ok(text) => Flash { ok: true, text },
            Err(err) if err.code() == "blocked" => Flash {
                ok: false,
                text: err.message().to_string(),
            },
            Err(err) => return self.viewer.error(&err),
        };
        state.sessions.flash(&self.viewer.session, flash);
        let to = if HeaderValue::from_str(to).is_ok() {
            to
        } else {
            "/"
        };
        Redirect::to(to).into_response()
    }
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login_form(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> Response {
    match session::random_hex() {
        Ok(nonce) => {
            let cookie = state.sessions.cookie(LOGIN_COOKIE, &nonce, 3600);
            let mut response = login_page(StatusCode::OK, &nonce, None);
            set_cookie(&mut response, &cookie);
            response
        }
        Err(err) => page::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to draw a random number: {err}"),
            None,
        ),
    }
}

fn login_page(status: StatusCode, nonce: &str, error: Option<&str>) -> Response {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.flash.error role="alert" #flash { (error) }
        }
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(nonce);
            label for="token" { "API token" }
            input #token type="password" name="token" required autocomplete="off" autofocus;
            p.hint { "A token from " code { "ferry token create --user NAME" } " on the server's host." }
            button type="submit" #signin { "Sign in" }
        }
    };
    let frame = Frame {
        title: "Sign in",
        section: Section::None,
        user: None,
        flash: None,
    };
    page::respond(status, page::render(frame, body))
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

async fn login(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let nonce = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie_value(h, LOGIN_COOKIE))
        .unwrap_or("")
        .to_string();
    let form = match form {
        Ok(axum::Form(form)) => form,
        Err(rejection) => {
            return page::error_page(StatusCode::BAD_REQUEST, &rejection.body_text(), None);
        }
    };
    if !same_token(&nonce, &form.csrf) {
        return page::error_page(
            StatusCode::FORBIDDEN,
            "the sign-in form's CSRF token is missing or wrong: open the sign-in page again",
            None,
        );
    }
    let refused = |message: &str| login_page(StatusCode::UNAUTHORIZED, &nonce, Some(message));
    let token = form.token.trim().to_string();
    if token.is_empty() {
        return refused("enter an API token");
    }
    let caller = match Caller::from_token(&state, &token).await {
        Ok(caller) => caller,
        Err(err) => return refused(err.message()),
    };
    if let Err(err) = super::api::read(&state, caller, |_, _| Ok(())).await {
        return refused(err.message());
    }
    let id = match state.sessions.open(&token, Utc::now()) {
        Ok(id) => id,
        Err(err) => {
            return page::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("failed to draw a random session id: {err}"),
                None,
            );
        }
    };
    let mut response = Redirect::to("/").into_response();
    set_cookie(&mut response, &state.sessions.session_cookie(&id));
    set_cookie(&mut response, &state.sessions.cookie(LOGIN_COOKIE, "", 0));
    response
}

#[derive(Deserialize)]
struct Nothing {}

async fn logout(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    posted: Posted<Nothing>,
) -> Response {
    state.sessions.close(&posted.viewer.session);
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, &state.sessions.cookie(SESSION_COOKIE, "", 0));
    response
}
