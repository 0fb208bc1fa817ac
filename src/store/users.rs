//! Users and tokens of the finance HTTP API (tables `users` and `user_tokens`), and the
//! audit entries of their administration.
//!
//! Tokens are never stored: only the SHA-256 hex digest of a token reaches this module
//! (see [`crate::api::auth`] for how tokens are made). Roles are stored as their text
//! (`viewer`, `clerk`, `supervisor`, `admin`; the table's CHECK refuses anything else).
//!
//! A revoked user keeps their row (the audit trail names them) and their name: a revoked
//! name cannot be added again, so an actor name in the audit trail always means one person.

use super::{now, DbContext, Store, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// `last_used_at` is written at most this often per token (not on every request).
pub const TOUCH_EVERY_SECS: i64 = 60;

/// A user as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Tokens that still work (not revoked, not expired; api and session).
    pub active_tokens: i64,
    /// The latest use of any of their tokens (to the minute: see [`TOUCH_EVERY_SECS`]).
    pub last_used_at: Option<String>,
}

/// The owner of an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: i64,
    /// `api` or `session`.
    pub kind: String,
    pub name: String,
    pub role: String,
    pub last_used_at: Option<String>,
}

/// What [`revoke_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now, with this many of their tokens that were still unrevoked.
    Revoked {
        tokens: i64,
    },
    /// Already revoked at that time; nothing changed.
    AlreadyRevoked {
        at: String,
    },
    NotFound,
}

/// A token kind: long-lived `api` (from `users add` / `users token`), or `session` (the web
/// login; expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Api,
    Session,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Session => "session",
        }
    }
}

/// UTC time as stored (RFC 3339 to the second, so text order is time order).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct UserState {
    id: i64,
    role: String,
    revoked_at: Option<String>,
}

async fn find(conn: &mut AnyConnection, name: &str) -> Result<Option<UserState>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT id, role, revoked_at FROM users WHERE name = $1",
    );
    let row = sqlx::query(&sql)
        .bind(name.to_string())
        .fetch_optional(&mut *conn)
        .await
        .op("reading a user")?;
    row.map(|r| {
        Ok(UserState {
            id: r.try_get(0)?,
            role: r.try_get(1)?,
            revoked_at: r.try_get(2)?,
        })
    })
    .transpose()
    .op("reading a user")
}

/// One audit entry of user administration (no payment, exception or resolution). Never pass
/// a token or its digest in any of these.
pub async fn audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    comment: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> Result<(), StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO audit_log (at, actor, action, payment_id, exception_id, resolution_id, comment, \
         before_state, after_state) VALUES ($1, $2, $3, NULL, NULL, NULL, $4, $5, $6)",
    );
    sqlx::query(&sql)
        .bind(now())
        .bind(actor.to_string())
        .bind(action.to_string())
        .bind(comment.to_string())
        .bind(before.to_string())
        .bind(after.to_string())
        .execute(&mut *conn)
        .await
        .op("writing the audit trail")?;
    Ok(())
}

fn user_json(name: &str, role: &str, revoked_at: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "user": name, "role": role, "revoked_at": revoked_at })
}

async fn insert_token(
    conn: &mut AnyConnection,
    user_id: i64,
    digest: &str,
    kind: TokenKind,
    expires_at: Option<String>,
) -> Result<(), StoreError> {
    let sql = super::dialect(
        conn,
        "INSERT INTO user_tokens (user_id, token_sha256, kind, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    );
    sqlx::query(&sql)
        .bind(user_id)
        .bind(digest.to_string())
        .bind(kind.as_str().to_string())
        .bind(now())
        .bind(expires_at)
        .execute(&mut *conn)
        .await
        .op("storing a token")?;
    Ok(())
}

/// Adds a user with their first `api` token (given as its digest), audited as `user_add` by
/// `actor`, in one transaction. `Conflict` when the name exists (revoked or not).
pub async fn add_user(
    store: &Store,
    name: &str,
    role: &str,
    actor: &str,
    token_digest: &str,
) -> Result<(), StoreError> {
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    if let Some(u) = find(&mut tx, name).await? {
        return Err(StoreError::Conflict(match u.revoked_at {
            Some(at) => format!(
                "user `{name}` was revoked at {at}; a revoked name is not reused (the audit trail names them): choose another name"
            ),
            None => format!("user `{name}` already exists"),
        }));
    }
    let sql = super::dialect(
        &tx,
        "INSERT INTO users (name, role, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    );
    let id: i64 = sqlx::query(&sql)
        .bind(name.to_string())
        .bind(role.to_string())
        .bind(actor.to_string())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .op("adding a user")?;
    insert_token(&mut tx, id, token_digest, TokenKind::Api, None).await?;
    audit(
        &mut tx,
        actor,
        "user_add",
        &format!("user {name} added with role {role} and an API token"),
        &serde_json::json!({}),
        &user_json(name, role, None),
    )
    .await?;
    tx.commit().await.op("adding a user")?;
    Ok(())
}

/// Issues a token for an active user. `api` tokens are audited (`user_token`, by `actor`);
/// sessions (web logins) are not, they would flood the trail. `Ok(None)` when no such user;
/// `Conflict` when the user is revoked.
pub async fn issue_token(
    store: &Store,
    name: &str,
    token_digest: &str,
    kind: TokenKind,
    expires_at: Option<String>,
    actor: &str,
) -> Result<Option<()>, StoreError> {
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let Some(u) = find(&mut tx, name).await? else {
        return Ok(None);
    };
    if let Some(at) = u.revoked_at {
        return Err(StoreError::Conflict(format!(
            "user `{name}` was revoked at {at}"
        )));
    }
    insert_token(&mut tx, u.id, token_digest, kind, expires_at.clone()).await?;
    if kind == TokenKind::Api {
        let state = user_json(name, &u.role, None);
        audit(
            &mut tx,
            actor,
            "user_token",
            &format!("new API token issued for user {name}"),
            &state,
            &state,
        )
        .await?;
    }
    tx.commit().await.op("issuing a token")?;
    Ok(Some(()))
}

/// Revokes a user and every token of theirs, audited as `user_revoke` by `actor`. The row
/// stays (and so does the name).
pub async fn revoke_user(
    store: &Store,
    name: &str,
    actor: &str,
) -> Result<RevokeOutcome, StoreError> {
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let Some(u) = find(&mut tx, name).await? else {
        return Ok(RevokeOutcome::NotFound);
    };
    if let Some(at) = u.revoked_at {
        return Ok(RevokeOutcome::AlreadyRevoked { at });
    }
    let at = now();
    let sql = super::dialect(&tx, "UPDATE users SET revoked_at = $1 WHERE id = $2");
    sqlx::query(&sql)
        .bind(at.clone())
        .bind(u.id)
        .execute(&mut *tx)
        .await
        .op("revoking a user")?;
    let sql = super::dialect(
        &tx,
        "UPDATE user_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    );
    let tokens = sqlx::query(&sql)
        .bind(at.clone())
        .bind(u.id)
        .execute(&mut *tx)
        .await
        .op("revoking a user's tokens")?
        .rows_affected() as i64;
    audit(
        &mut tx,
        actor,
        "user_revoke",
        &format!("user {name} revoked with {tokens} token(s)"),
        &user_json(name, &u.role, None),
        &user_json(name, &u.role, Some(&at)),
    )
    .await?;
    tx.commit().await.op("revoking a user")?;
    Ok(RevokeOutcome::Revoked { tokens })
}

/// Revokes one token of that kind by its digest; false when there is no such unrevoked
/// token.
pub async fn revoke_token(
    conn: &mut AnyConnection,
    token_digest: &str,
    kind: TokenKind,
) -> Result<bool, StoreError> {
    let sql = super::dialect(
        conn,
        "UPDATE user_tokens SET revoked_at = $1 WHERE token_sha256 = $2 AND kind = $3 \
         AND revoked_at IS NULL",
    );
    let n = sqlx::query(&sql)
        .bind(now())
        .bind(token_digest.to_string())
        .bind(kind.as_str().to_string())
        .execute(&mut *conn)
        .await
        .op("revoking a token")?
        .rows_affected();
    Ok(n > 0)
}

/// The owner of an active token (not revoked, not expired at `at`, user not revoked), by the
/// token's digest. The digest is looked up by the database's index (equality on a digest of
/// 256 random bits: a timing difference would reveal nothing usable, so no constant-time
/// comparison is needed).
pub async fn lookup(
    conn: &mut AnyConnection,
    token_digest: &str,
    at: &str,
) -> Result<Option<TokenOwner>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT t.id, t.kind, u.name, u.role, t.last_used_at FROM user_tokens t \
         JOIN users u ON u.id = t.user_id \
         WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND u.revoked_at IS NULL \
         AND (t.expires_at IS NULL OR t.expires_at > $2)",
    );
    let row = sqlx::query(&sql)
        .bind(token_digest.to_string())
        .bind(at.to_string())
        .fetch_optional(&mut *conn)
        .await
        .op("looking up a token")?;
    row.map(|r| {
        Ok(TokenOwner {
            token_id: r.try_get(0)?,
            kind: r.try_get(1)?,
            name: r.try_get(2)?,
            role: r.try_get(3)?,
            last_used_at: r.try_get(4)?,
        })
    })
    .transpose()
    .op("looking up a token")
}

/// Whether a token last used at `last_used_at` should be touched at `at` (never used, or
/// not within [`TOUCH_EVERY_SECS`]).
pub fn touch_due(last_used_at: Option<&str>, at: chrono::DateTime<chrono::Utc>) -> bool {
    match last_used_at {
        None => true,
        Some(last) => last < stamp(at - chrono::Duration::seconds(TOUCH_EVERY_SECS)).as_str(),
    }
}

/// Sets a token's `last_used_at` to `at` unless it was set within [`TOUCH_EVERY_SECS`];
/// true when it wrote.
pub async fn touch(
    conn: &mut AnyConnection,
    token_id: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let sql = super::dialect(
        conn,
        "UPDATE user_tokens SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $3)",
    );
    let n = sqlx::query(&sql)
        .bind(stamp(at))
        .bind(token_id)
        .bind(stamp(at - chrono::Duration::seconds(TOUCH_EVERY_SECS)))
        .execute(&mut *conn)
        .await
        .op("recording a token's use")?
        .rows_affected();
    Ok(n > 0)
}

/// Every user, by name, with their active token count and last use.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<UserRow>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT u.name, u.role, u.created_by, u.created_at, u.revoked_at, \
         (SELECT COUNT(*) FROM user_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL \
          AND (t.expires_at IS NULL OR t.expires_at > $1)) AS active_tokens, \
         (SELECT MAX(t.last_used_at) FROM user_tokens t WHERE t.user_id = u.id) AS last_used_at \
         FROM users u ORDER BY u.name",
    );
    let rows = sqlx::query(&sql)
        .bind(now())
        .fetch_all(&mut *conn)
        .await
        .op("listing users")?;
    rows.iter()
        .map(|r| {
            Ok(UserRow {
                name: r.try_get(0)?,
                role: r.try_get(1)?,
                created_by: r.try_get(2)?,
                created_at: r.try_get(3)?,
                revoked_at: r.try_get(4)?,
                active_tokens: r.try_get(5)?,
                last_used_at: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("listing users")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_at_most_once_a_minute() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-12T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(touch_due(None, t));
        assert!(!touch_due(Some("2026-11-12T09:59:30Z"), t));
        assert!(!touch_due(Some("2026-11-12T09:59:00Z"), t));
        assert!(touch_due(Some("2026-11-12T09:58:59Z"), t));
    }
}
