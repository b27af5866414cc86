//! Errors of the service: [`ServerError`] for starting and running it, [`ApiError`] for one
//! request — the one place where domain errors become HTTP statuses and error codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::gitstore::GitStoreError;
use crate::policy::Blocker;
use crate::promotion::PromotionError;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to load the TLS certificate {cert} and key {key}")]
    Tls {
        cert: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the webhook secret file {path}")]
    WebhookSecret {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the webhook secret file {path} is empty")]
    EmptyWebhookSecret { path: String },
    #[error("failed to start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to serve HTTP")]
    Serve(#[source] std::io::Error),
    #[error("failed to load the pipeline and policies: {0}")]
    Config(String),
    #[error("failed to start the notification worker")]
    Notify(#[source] crate::notify::NotifyError),
    #[error(transparent)]
    Engine(#[from] PromotionError),
}

/// The body of every error response: `{"error": {"code", "message", …}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong with a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `unauthenticated`, `forbidden`, `not_found`, `bad_request`, `blocked`, `busy`,
    /// `conflict`, `failed`, `payload_too_large`, `unavailable` or `internal`.
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, for `bad_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What blocks the promotion, for `blocked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub blockers: Option<Vec<Blocker>>,
    /// The promotion concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
}

/// An error answering one request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                field: None,
                blockers: None,
                promotion: None,
            },
        }
    }

    /// 401: no credentials, or credentials that do not authenticate anyone.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the caller is known but may not do this; the message says why.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 about the request field `field`.
    pub fn bad_request(field: Option<&str>, message: impl Into<String>) -> ApiError {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
        err.detail.field = field.map(str::to_string);
        err
    }

    /// 413: the request body is larger than the service accepts.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 409 `blocked`, with the blockers as data.
    pub fn blocked(
        message: impl Into<String>,
        promotion: &str,
        blockers: Vec<Blocker>,
    ) -> ApiError {
        let mut err = ApiError::new(StatusCode::CONFLICT, "blocked", message);
        err.detail.blockers = Some(blockers);
        err.detail.promotion = Some(promotion.to_string());
        err
    }

    /// 409 `failed`: the promotion ended failed.
    pub fn failed(message: impl Into<String>, promotion: &str) -> ApiError {
        let mut err = ApiError::new(StatusCode::CONFLICT, "failed", message);
        err.detail.promotion = Some(promotion.to_string());
        err
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503: the service is starting or stopping.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: something on the server's side; the message names what failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code (`forbidden`, `blocked`, …).
    pub fn code(&self) -> &'static str {
        self.detail.code
    }

    /// The message a person reads.
    pub fn message(&self) -> &str {
        &self.detail.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.detail.code, "{}", self.detail.message);
        }
        (self.status, Json(ErrorBody { error: self.detail })).into_response()
    }
}

impl From<PromotionError> for ApiError {
    fn from(err: PromotionError) -> ApiError {
        let message = crate::promotion::error_chain(&err);
        match &err {
            PromotionError::BadInput(_)
            | PromotionError::Config(_)
            | PromotionError::Render { .. } => ApiError::bad_request(None, message),
            PromotionError::Git(GitStoreError::UnknownRev { .. }) => {
                ApiError::bad_request(None, message)
            }
            PromotionError::UnknownRevision { .. }
            | PromotionError::UnknownStage { .. }
            | PromotionError::UnknownPromotion { .. } => ApiError::not_found(message),
            PromotionError::Refused(_) => ApiError::forbidden(message),
            PromotionError::Busy { .. } => ApiError::new(StatusCode::CONFLICT, "busy", message),
            PromotionError::Concurrent { .. } | PromotionError::Contended { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            _ => ApiError::internal(message),
        }
    }
}

impl From<crate::state::StateError> for ApiError {
    fn from(err: crate::state::StateError) -> ApiError {
        ApiError::from(PromotionError::State(err))
    }
}
