//! Request bodies and query strings whose rejections answer in the service's error shape:
//! a malformed body is a `bad_request` naming the field, an oversized one a 413.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body the service reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON request body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(format!("the request body is larger than {MAX_BODY} bytes"));
    }
    let text = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
            None,
            "the request body must be JSON (Content-Type: application/json)",
        ),
        _ => ApiError::bad_request(field_of(&text).as_deref(), text),
    }
}

/// The query string of a request.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    ApiError::bad_request(field_of(&text).as_deref(), text)
}

/// The field a serde message is about: ``missing field `x` ``, ``unknown field `x` ``, or a
/// path `x.y: …` from the body's deserializer.
fn field_of(message: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            return rest.split('`').next().map(str::to_string);
        }
    }
    let (_, detail) = message.split_once("target type: ")?;
    let (path, _) = detail.split_once(": ")?;
    let path = path.trim();
    (!path.is_empty() && !path.contains(' ')).then(|| path.to_string())
}

/// The raw bytes of a request body (webhook deliveries, whose signature covers the bytes).
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::too_large(format!("the request body is larger than {MAX_BODY} bytes")),
            ),
            Err(rejection) => Err(ApiError::bad_request(None, rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn fields_are_found_in_serde_messages() {
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: missing field `revision` at line 1 column 2"
            ),
            Some("revision".to_string())
        );
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `revision`"
            ),
            Some("colour".to_string())
        );
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: images.acme/web: invalid type: integer `3`, expected a string at line 1 column 25"
            ),
            Some("images.acme/web".to_string())
        );
        assert_eq!(
            field_of("Failed to parse the request body as JSON: EOF while parsing"),
            None
        );
    }
}
