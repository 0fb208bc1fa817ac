//! The error of the partner API: a status code and
//! `{"error": {"code": "...", "message": "..."}}`, where `code` is one of a fixed set banks
//! can program against:
//!
//! | code           | status | when                                                        |
//! |----------------|--------|-------------------------------------------------------------|
//! | `unauthorized` | 401    | no, unknown or revoked token; bad or missing signature      |
//! | `forbidden`    | 403    | authenticated, but not allowed                              |
//! | `not_found`    | 404    | no such thing *for this bank* (other banks' data included)  |
//! | `conflict`     | 409    | contradicts what is stored; a replayed signature            |
//! | `invalid`      | 400    | the request cannot be read or a value is not acceptable     |
//! | `too_large`    | 413    | the body is over the limit                                  |
//! | `rate_limited` | 429    | over the bank's rate limit (`Retry-After: SECONDS`)         |
//! | `internal`     | 500    | logged with its causes; the message says nothing more       |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// 401 (answered with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// 403
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 400
    #[error("{0}")]
    Invalid(String),
    /// 413: the body is over this many bytes.
    #[error("the request body is over the limit of {0} bytes")]
    TooLarge(usize),
    /// 429: try again after this many seconds (at least 1).
    #[error("rate limit exceeded: try again in {0} s")]
    RateLimited(u64),
    /// 500: logged, not shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl PartnerError {
    pub fn status(&self) -> StatusCode {
        match self {
            PartnerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            PartnerError::Forbidden(_) => StatusCode::FORBIDDEN,
            PartnerError::NotFound(_) => StatusCode::NOT_FOUND,
            PartnerError::Conflict(_) => StatusCode::CONFLICT,
            PartnerError::Invalid(_) => StatusCode::BAD_REQUEST,
            PartnerError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PartnerError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            PartnerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            PartnerError::Unauthorized(_) => "unauthorized",
            PartnerError::Forbidden(_) => "forbidden",
            PartnerError::NotFound(_) => "not_found",
            PartnerError::Conflict(_) => "conflict",
            PartnerError::Invalid(_) => "invalid",
            PartnerError::TooLarge(_) => "too_large",
            PartnerError::RateLimited(_) => "rate_limited",
            PartnerError::Internal(_) => "internal",
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> PartnerError {
        PartnerError::Internal(e.into())
    }
}

impl From<crate::store::StoreError> for PartnerError {
    fn from(e: crate::store::StoreError) -> PartnerError {
        match e {
            crate::store::StoreError::Conflict(m) => PartnerError::Conflict(m),
            e => PartnerError::Internal(e.into()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for PartnerError {
    fn from(e: axum::extract::rejection::JsonRejection) -> PartnerError {
        PartnerError::Invalid(e.body_text())
    }
}

impl IntoResponse for PartnerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            PartnerError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "partner API request failed");
                "internal error (logged)".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(serde_json::json!({
            "error": { "code": self.code(), "message": message }
        }));
        let mut r = (status, body).into_response();
        match &self {
            PartnerError::Unauthorized(_) => {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            PartnerError::RateLimited(secs) => {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: PartnerError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let r = e.into_response();
        let (status, headers) = (r.status(), r.headers().clone());
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn codes_statuses_and_headers() {
        let (s, h, b) = body(PartnerError::Unauthorized("who?".into())).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(b["error"]["code"], "unauthorized");
        assert_eq!(b["error"]["message"], "who?");
        let (s, h, b) = body(PartnerError::RateLimited(3)).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h[header::RETRY_AFTER], "3");
        assert_eq!(b["error"]["code"], "rate_limited");
        for (e, status, code) in [
            (
                PartnerError::Forbidden("x".into()),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                PartnerError::NotFound("x".into()),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                PartnerError::Conflict("x".into()),
                StatusCode::CONFLICT,
                "conflict",
            ),
            (
                PartnerError::Invalid("x".into()),
                StatusCode::BAD_REQUEST,
                "invalid",
            ),
            (
                PartnerError::TooLarge(10),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
        ] {
            let (s, _, b) = body(e).await;
            assert_eq!(s, status);
            assert_eq!(b["error"]["code"], code);
        }
        let (s, _, b) = body(PartnerError::internal(anyhow::anyhow!("secret detail"))).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b["error"]["code"], "internal");
        assert!(!b["error"]["message"].as_str().unwrap().contains("secret"));
        let e: PartnerError = crate::store::StoreError::Conflict("taken".into()).into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }
}
