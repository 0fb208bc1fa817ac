//! The admin API of users and tokens (role `admin`), and `GET /api/v1/me` (any role).
//!
//! - `GET /api/v1/users`: every user (revoked ones too) with role, who added them, when,
//!   `revoked_at`, `active_tokens` and `last_used_at`.
//! - `POST /api/v1/users` `{"name", "role"}`: 201 `{"name", "role", "token"}`; the token is
//!   shown only this once. 409 when the name is taken (names of revoked users too), 422 for
//!   a bad name or role.
//! - `POST /api/v1/users/{name}/tokens`: 201 `{"name", "token"}`, another API token (the
//!   user's other tokens stay valid). 404 unknown, 409 revoked.
//! - `DELETE /api/v1/users/{name}`: revokes the user and all their tokens: 200
//!   `{"name", "revoked": true, "tokens_revoked"}`. 404 unknown, 409 already revoked or
//!   oneself (so the last admin cannot lock everyone out).
//!
//! Each change is written to the audit trail with the admin as the actor (never a token).

use super::auth::{self, Role, User};
use super::error::ApiError;
use crate::app::state::DaemonState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes() -> Router<Arc<DaemonState>> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(list).post(add))
        .route("/api/v1/users/{name}/tokens", post(token))
        .route("/api/v1/users/{name}", delete(revoke))
}

async fn me(user: User) -> Json<Value> {
    Json(json!({ "name": user.name, "role": user.role }))
}

async fn list(
    user: User,
    State(state): State<Arc<DaemonState>>,
) -> Result<Json<Vec<crate::store::users::UserRow>>, ApiError> {
    user.require(Role::Admin)?;
    let mut conn = state
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(crate::store::users::list(&mut conn).await?))
}

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
    role: String,
}

async fn add(
    user: User,
    State(state): State<Arc<DaemonState>>,
    body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require(Role::Admin)?;
    let Json(new) = body?;
    let role: Role = new
        .role
        .parse()
        .map_err(|e: auth::UnknownRole| ApiError::Unprocessable(e.to_string()))?;
    let token = auth::add_user(&state.app.store, &new.name, role, &user.name).await?;
    tracing::info!(admin = %user.name, user = %new.name, %role, "user added");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": new.name, "role": role, "token": token })),
    ))
}

async fn token(
    user: User,
    State(state): State<Arc<DaemonState>>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    user.require(Role::Admin)?;
    let token = auth::issue_api_token(&state.app.store, &name, &user.name).await?;
    tracing::info!(admin = %user.name, user = %name, "API token issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "token": token })),
    ))
}

async fn revoke(
    user: User,
    State(state): State<Arc<DaemonState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.require(Role::Admin)?;
    if name == user.name {
        return Err(ApiError::Conflict(
            "an admin cannot revoke themselves (another admin, or `billrecon users revoke`, can)"
                .into(),
        ));
    }
    let tokens = auth::revoke_user(&state.app.store, &name, &user.name).await?;
    tracing::info!(admin = %user.name, user = %name, tokens, "user revoked");
    Ok(Json(
        json!({ "name": name, "revoked": true, "tokens_revoked": tokens }),
    ))
}
