//! The error of the JSON API: a status code and `{"error": "..."}`. Internal errors are
//! logged with their causes and answered with a generic message (nothing of the database or
//! the code leaks to the client).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (bad JSON, missing fields).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or not valid ones (answered with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409: contradicts the current state (a name taken, a user revoked).
    #[error("{0}")]
    Conflict(String),
    /// 422: readable, but a value is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 500: logged, not shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(e.into())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::Conflict(m) => ApiError::Conflict(m),
            e => ApiError::Internal(e.into()),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> ApiError {
        if e.status() == StatusCode::UNPROCESSABLE_ENTITY {
            ApiError::Unprocessable(e.body_text())
        } else {
            ApiError::BadRequest(e.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "API request failed");
                "internal error (logged)".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(serde_json::json!({ "error": message }));
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn statuses_and_json_bodies() {
        let (s, b) = body(ApiError::Forbidden("no".into())).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(b["error"], "no");
        let (s, _) = body(ApiError::Conflict("taken".into())).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = body(ApiError::Unprocessable("bad role".into())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, b) = body(ApiError::internal(anyhow::anyhow!("secret detail"))).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!b["error"].as_str().unwrap().contains("secret"));
        let r = ApiError::Unauthorized("who?".into()).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
