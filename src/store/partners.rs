//! Credentials of partner banks on the partner API (table `partner_credentials`), and the
//! audit entries of their administration.
//!
//! Like users' tokens, a partner token is never stored: only its SHA-256 hex digest reaches
//! this module (see [`crate::api::partner::auth`] for how tokens are made). A credential
//! belongs to one bank; a bank may hold several (to rotate without downtime). A revoked
//! credential keeps its row (the listing shows when it was revoked). Nothing here looks at
//! the config: whether the bank may use the partner API is decided by the caller.
//!
//! The used request signatures (`partner_signatures`, [`first_use`]) live here too: a
//! signature is accepted once while its timestamp is within the bank's replay window, across
//! restarts and across daemon instances that share one database.

pub use super::users::touch_due;
use super::users::{audit, stamp, TOUCH_EVERY_SECS};
use super::{now, DbContext, Store, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// Records that bank `bank_id` used `signature_hex` in a request whose timestamp leaves the
/// replay window at `expires_at` (Unix seconds); true on its first use, false when it was
/// already used and its record has not expired yet (a replay). A single statement (an insert
/// that does nothing when the signature is recorded and unexpired), so two instances racing
/// with the same signature cannot both see a first use. Expired records are purged now and
/// then ([`purge_signatures`]).
pub async fn first_use(
    store: &Store,
    bank_id: &str,
    signature_hex: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let sql =
        "INSERT INTO partner_signatures (bank_id, signature, expires_at) VALUES ($1, $2, $3) \
               ON CONFLICT (bank_id, signature) DO UPDATE SET expires_at = excluded.expires_at \
               WHERE partner_signatures.expires_at < $4";
    let run = |mut conn: sqlx::pool::PoolConnection<sqlx::Any>| async move {
        let sql = super::dialect(&conn, sql);
        sqlx::query(&sql)
            .bind(bank_id.to_string())
            .bind(signature_hex.to_string())
            .bind(expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected() == 1)
            .op("recording a request signature")
    };
    match store.backend() {
        // SQLite has one writer: take the daemon's writer lock as every write does
        super::Backend::Sqlite => {
            let _w = store.writer().await;
            run(store.write_pool().acquire().await.op("connecting")?).await
        }
        // PostgreSQL takes concurrent writers; the in-process lock would make a partner
        // request wait for an ingest
        super::Backend::Postgres => run(store.pool().acquire().await.op("connecting")?).await,
    }
}

/// Deletes the records of signatures whose window ended before `now`; returns how many.
pub async fn purge_signatures(store: &Store, now: i64) -> Result<u64, StoreError> {
    let sql = "DELETE FROM partner_signatures WHERE expires_at < $1";
    match store.backend() {
        super::Backend::Sqlite => {
            let _w = store.writer().await;
            let mut conn = store.write_pool().acquire().await.op("connecting")?;
            let sql = super::dialect(&conn, sql);
            sqlx::query(&sql).bind(now).execute(&mut *conn).await
        }
        super::Backend::Postgres => {
            let mut conn = store.pool().acquire().await.op("connecting")?;
            sqlx::query(sql).bind(now).execute(&mut *conn).await
        }
    }
    .map(|r| r.rows_affected())
    .op("purging expired request signatures")
}

/// A credential as listed (never its digest).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: i64,
    pub bank_id: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The latest use (to the minute: see [`TOUCH_EVERY_SECS`]).
    pub last_used_at: Option<String>,
}

/// An active (unrevoked) credential found by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveCredential {
    pub id: i64,
    pub bank_id: String,
    pub last_used_at: Option<String>,
}

/// What [`revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// This many credentials were revoked now (0 when revoking all of a bank's and none was
    /// active).
    Revoked { count: i64 },
    /// The one credential asked for was already revoked at that time; nothing changed.
    AlreadyRevoked { at: String },
    /// No credential with that id for that bank.
    NotFound,
}

fn credential_json(bank_id: &str, id: i64, revoked_at: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "bank": bank_id, "credential_id": id, "revoked_at": revoked_at })
}

/// Stores a new credential of `bank_id` (given as its token's digest), audited as
/// `partner_token` by `actor`, in one transaction; returns its id.
pub async fn issue(
    store: &Store,
    bank_id: &str,
    token_digest: &str,
    actor: &str,
) -> Result<i64, StoreError> {
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let sql = super::dialect(
        &tx,
        "INSERT INTO partner_credentials (bank_id, token_sha256, created_by, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    );
    let id: i64 = sqlx::query(&sql)
        .bind(bank_id.to_string())
        .bind(token_digest.to_string())
        .bind(actor.to_string())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .op("storing a partner credential")?;
    audit(
        &mut tx,
        actor,
        "partner_token",
        &format!("new partner API credential {id} issued for bank {bank_id}"),
        &serde_json::json!({}),
        &credential_json(bank_id, id, None),
    )
    .await?;
    tx.commit().await.op("storing a partner credential")?;
    Ok(id)
}

/// Revokes credential `id` of `bank_id`, or (`id` None) every active credential of
/// `bank_id`; audited as `partner_revoke` by `actor` (one entry per credential revoked).
pub async fn revoke(
    store: &Store,
    bank_id: &str,
    id: Option<i64>,
    actor: &str,
) -> Result<RevokeOutcome, StoreError> {
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let ids: Vec<i64> = match id {
        Some(id) => {
            let sql = super::dialect(
                &tx,
                "SELECT revoked_at FROM partner_credentials WHERE id = $1 AND bank_id = $2",
            );
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(bank_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .op("reading a partner credential")?;
            let Some(row) = row else {
                return Ok(RevokeOutcome::NotFound);
            };
            let revoked_at: Option<String> = row.try_get(0).op("reading a partner credential")?;
            if let Some(at) = revoked_at {
                return Ok(RevokeOutcome::AlreadyRevoked { at });
            }
            vec![id]
        }
        None => {
            let sql = super::dialect(
                &tx,
                "SELECT id FROM partner_credentials WHERE bank_id = $1 AND revoked_at IS NULL \
                 ORDER BY id",
            );
            sqlx::query(&sql)
                .bind(bank_id.to_string())
                .fetch_all(&mut *tx)
                .await
                .op("reading partner credentials")?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .op("reading partner credentials")?
        }
    };
    let at = now();
    let sql = super::dialect(
        &tx,
        "UPDATE partner_credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    );
    for &cid in &ids {
        sqlx::query(&sql)
            .bind(at.clone())
            .bind(cid)
            .execute(&mut *tx)
            .await
            .op("revoking a partner credential")?;
        audit(
            &mut tx,
            actor,
            "partner_revoke",
            &format!("partner API credential {cid} of bank {bank_id} revoked"),
            &credential_json(bank_id, cid, None),
            &credential_json(bank_id, cid, Some(&at)),
        )
        .await?;
    }
    tx.commit().await.op("revoking partner credentials")?;
    Ok(RevokeOutcome::Revoked {
        count: ids.len() as i64,
    })
}

/// The active credential with this digest (found by the unique index; see
/// [`super::users::lookup`] on why no constant-time comparison is needed).
pub async fn lookup(
    conn: &mut AnyConnection,
    token_digest: &str,
) -> Result<Option<ActiveCredential>, StoreError> {
    let sql = super::dialect(
        conn,
        "SELECT id, bank_id, last_used_at FROM partner_credentials \
         WHERE token_sha256 = $1 AND revoked_at IS NULL",
    );
    let row = sqlx::query(&sql)
        .bind(token_digest.to_string())
        .fetch_optional(&mut *conn)
        .await
        .op("looking up a partner credential")?;
    row.map(|r| {
        Ok(ActiveCredential {
            id: r.try_get(0)?,
            bank_id: r.try_get(1)?,
            last_used_at: r.try_get(2)?,
        })
    })
    .transpose()
    .op("looking up a partner credential")
}

/// Sets a credential's `last_used_at` to `at` unless it was set within
/// [`TOUCH_EVERY_SECS`]; true when it wrote.
pub async fn touch(
    conn: &mut AnyConnection,
    id: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let sql = super::dialect(
        conn,
        "UPDATE partner_credentials SET last_used_at = $1 WHERE id = $2 \
         AND (last_used_at IS NULL OR last_used_at < $3)",
    );
    let n = sqlx::query(&sql)
        .bind(stamp(at))
        .bind(id)
        .bind(stamp(at - chrono::Duration::seconds(TOUCH_EVERY_SECS)))
        .execute(&mut *conn)
        .await
        .op("recording a partner credential's use")?
        .rows_affected();
    Ok(n > 0)
}

/// Every credential (revoked ones too) of one bank or of all, by bank then id.
pub async fn list(
    conn: &mut AnyConnection,
    bank_id: Option<&str>,
) -> Result<Vec<CredentialRow>, StoreError> {
    let base = "SELECT id, bank_id, created_by, created_at, revoked_at, last_used_at \
                FROM partner_credentials";
    let sql = match bank_id {
        Some(_) => format!("{base} WHERE bank_id = $1 ORDER BY bank_id, id"),
        None => format!("{base} ORDER BY bank_id, id"),
    };
    let sql = super::dialect(conn, &sql);
    let mut q = sqlx::query(&sql);
    if let Some(b) = bank_id {
        q = q.bind(b.to_string());
    }
    let rows = q
        .fetch_all(&mut *conn)
        .await
        .op("listing partner credentials")?;
    rows.iter()
        .map(|r| {
            Ok(CredentialRow {
                id: r.try_get(0)?,
                bank_id: r.try_get(1)?,
                created_by: r.try_get(2)?,
                created_at: r.try_get(3)?,
                revoked_at: r.try_get(4)?,
                last_used_at: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .op("listing partner credentials")
}
