//! Errors as HTTP answers: a status and a JSON body naming the kind, the message and, for bad
//! input, the field.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use memlayer::{Error, ErrorKind};
use serde_json::json;

/// An error answered as JSON: `{"error": {"kind", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// 400: a body that is not the JSON expected.
    pub fn bad_json(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 403: outside the token's namespaces.
    pub fn forbidden(namespace: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not touch namespace {namespace:?}"),
        )
    }

    /// 401: no or unknown token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required (Authorization: Bearer <token>)",
        )
    }

    /// Puts `prefix` before the message (to say where in a body the error is).
    pub fn prefix(&mut self, prefix: &str) {
        self.message = format!("{prefix}{}", self.message);
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 422 naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message);
        e.field = Some(field.to_owned());
        e
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, kind) = match e.kind() {
            ErrorKind::InvalidInput => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ErrorKind::ConfigInvalid => (StatusCode::INTERNAL_SERVER_ERROR, "config_invalid"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected"),
        };
        let field = e
            .context()
            .iter()
            .find(|(k, _)| *k == "field")
            .map(|(_, v)| v.clone());
        // A client sees memlayer's own words, never a driver's: an error with a cause from
        // the driver, or one on the server's side (the backend down, slow or failing), is
        // logged whole and answered with its kind and where it happened.
        let servers_side = matches!(
            e.kind(),
            ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::ConfigInvalid
                | ErrorKind::Unexpected
        );
        let message = if servers_side || std::error::Error::source(&e).is_some() {
            tracing::error!(error = %e, "request failed");
            let mut m = format!("{} error", e.kind());
            if !e.backend().is_empty() {
                m.push_str(&format!(" in the {} backend", e.backend()));
            }
            if !e.operation().is_empty() {
                m.push_str(&format!(" ({})", e.operation()));
            }
            m.push_str("; the server log has the detail");
            if e.is_temporary() {
                m.push_str("; retry later");
            }
            m
        } else {
            e.to_string()
        };
        ApiError {
            status,
            kind,
            message,
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "kind": self.kind, "message": self.message });
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}
