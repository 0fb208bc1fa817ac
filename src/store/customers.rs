//! Customer master rows.

use super::{in_list, now, DbContext, StoreError, Val};
use sqlx::{AnyConnection, Row};
use std::collections::HashSet;

/// A customer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRow {
    pub account_no: String,
    pub account_key: String,
    pub name: String,
    pub class: String,
    pub key_account: bool,
    pub manager: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The language of the customer's notices (zh, en); `None`: the configured default.
    pub language: Option<String>,
}

/// Inserts or updates customers by account number.
pub async fn upsert(conn: &mut AnyConnection, rows: &[CustomerRow]) -> Result<(), StoreError> {
    let at = now();
    let vals: Vec<Vec<Val>> = rows
        .iter()
        .map(|c| {
            vec![
                Val::S(c.account_no.clone()),
                Val::S(c.account_key.clone()),
                Val::S(c.name.clone()),
                Val::S(c.class.clone()),
                Val::I(c.key_account as i64),
                Val::OS(c.manager.clone()),
                Val::OS(c.phone.clone()),
                Val::OS(c.email.clone()),
                Val::OS(c.language.clone()),
                Val::S(at.clone()),
            ]
        })
        .collect();
    // ON CONFLICT .. DO UPDATE needs one statement per chunk; insert_rows appends VALUES.
    let per = 1000;
    for chunk in vals.chunks(per) {
        let sql = format!(
            "INSERT INTO customers (account_no, account_key, name, class, key_account, manager, phone, email, language, updated_at) VALUES {} \
             ON CONFLICT (account_no) DO UPDATE SET name = excluded.name, class = excluded.class, \
             key_account = excluded.key_account, manager = excluded.manager, phone = excluded.phone, \
             email = excluded.email, language = excluded.language, updated_at = excluded.updated_at",
            super::placeholders(chunk.len(), 10, 1)
        );
        let sql = super::dialect(conn, &sql);
        let q = super::bind_vals(sqlx::query(&sql), chunk.iter().flatten().cloned().collect());
        q.execute(&mut *conn).await.op("saving customers")?;
    }
    Ok(())
}

/// Which of these account numbers exist.
pub async fn existing_accounts(
    conn: &mut AnyConnection,
    accounts: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for chunk in accounts.chunks(1000) {
        let sql = format!(
            "SELECT account_no FROM customers WHERE account_no IN ({})",
            in_list(chunk.len(), 1)
        );
        let sql = super::dialect(conn, &sql);
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q.bind(a.clone());
        }
        for r in q.fetch_all(&mut *conn).await.op("looking up customers")? {
            out.insert(r.try_get::<String, _>(0).op("reading customers")?);
        }
    }
    Ok(out)
}

/// Account numbers already stored under these normalized keys: key -> account_no.
pub async fn accounts_by_key(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(1000) {
        let rest = format!(
            "customers WHERE account_key IN ({})",
            in_list(chunk.len(), 1)
        );
        let vals = chunk.iter().map(|k| super::Val::S(k.clone())).collect();
        for r in super::fetch_packed(
            conn,
            &["account_key", "account_no"],
            &rest,
            "account_key",
            vals,
        )
        .await?
        {
            out.push((
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// The customer classes of these accounts: (account_no, class).
pub async fn classes(
    conn: &mut AnyConnection,
    accounts: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in accounts.chunks(1000) {
        let rest = format!(
            "customers WHERE account_no IN ({})",
            in_list(chunk.len(), 1)
        );
        let vals = chunk.iter().map(|k| super::Val::S(k.clone())).collect();
        for r in
            super::fetch_packed(conn, &["account_no", "class"], &rest, "account_no", vals).await?
        {
            out.push((
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// Every customer's (account_no, class), in pages of `limit` by account number after
/// `after`: what a large matching run keeps in memory.
pub async fn keys_page(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let rest = "(SELECT account_no, class FROM customers WHERE account_no > $1 \
                ORDER BY account_no LIMIT $2) c";
    let rows = super::fetch_packed(
        conn,
        &["account_no", "class"],
        rest,
        "account_no",
        vec![Val::S(after.to_string()), Val::I(limit)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::cell(&r, 0).unwrap_or_default(),
                super::cell(&r, 1).unwrap_or_default(),
            )
        })
        .collect())
}

pub async fn count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM customers")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .op("counting customers")
}
