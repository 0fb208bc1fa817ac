//! The exceptions workbench: what finance staff do with the payments the machine would not
//! apply. Each resolution is one transaction that keeps `billrecon verify` true and appends
//! to the audit trail (who, when, why, before and after); a resolution made in error is
//! reopened, which undoes it exactly.
//!
//! - [`resolve`]: the resolutions (apply to a bill or an account with the core's allocation
//!   rules, split, hold as credit, refund, write off, reject a duplicate), the four-eyes
//!   approval of large refunds, reopening, and escalation of old exceptions;
//! - `suggest`: ranked candidate bills for a payment, and a bank's narrow auto-rule.

pub mod resolve;
pub mod suggest;

use serde::Serialize;

/// What a user may do, each role including the ones before it: viewer (read), clerk
/// (resolve), supervisor (reopen, write off, approve large refunds), admin (users, tokens).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Clerk,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Clerk, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown role `{0}` (viewer, clerk, supervisor or admin)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Who is acting: a user of the workbench, or the system (escalation, a bank's auto-rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

use crate::store::workbench::{self as q, AuditEntry, ExceptionRow, PaymentRow, ResolutionRow};
use crate::store::{DbContext, Store, StoreError};

/// Everything about one exception: its payment, the resolutions made of it and the audit
/// trail of the payment.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub exception: ExceptionRow,
    pub payment: PaymentRow,
    pub resolutions: Vec<ResolutionRow>,
    pub audit: Vec<AuditEntry>,
}

/// The detail of exception `id`, `None` when there is none.
pub async fn detail(store: &Store, id: i64) -> Result<Option<Detail>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    let Some(exception) = q::exception(&mut conn, id).await? else {
        return Ok(None);
    };
    let Some(payment) = q::payment(&mut conn, exception.payment_id).await? else {
        return Err(StoreError::Inconsistent(format!(
            "exception {id} names payment {}, which does not exist",
            exception.payment_id
        )));
    };
    let resolutions = q::resolutions_of_payment(&mut conn, payment.id).await?;
    let audit = q::audit(
        &mut conn,
        &q::AuditFilter {
            payment_id: Some(payment.id),
            ..Default::default()
        },
    )
    .await?;
    Ok(Some(Detail {
        exception,
        payment,
        resolutions,
        audit,
    }))
}

/// The actor for a user name: the user must exist and not be revoked (the CLI's `--by`).
pub async fn actor_named(store: &Store, name: &str) -> Result<Option<Actor>, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    Ok(q::active_user_role(&mut conn, name)
        .await?
        .and_then(|r| r.parse::<Role>().ok())
        .map(|role| Actor {
            name: name.to_string(),
            role,
        }))
}

/// What [`after_matching`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Housekeeping {
    /// Open exceptions with a suggested account (queue order).
    pub suggested: u64,
    /// Exceptions resolved by a bank's auto-rule.
    pub auto_resolved: u64,
}

/// Applies each bank's narrow auto-rule ([`crate::config::AutoResolve`]) to its open
/// exceptions: a payment goes to a bill only when [`suggest::auto_pick`] finds exactly one
/// certain candidate. The actor in the audit trail is `auto-rule:BANK`. Returns how many were
/// resolved.
pub async fn auto_resolve(
    store: &Store,
    config: &crate::config::Config,
    banks: &[crate::config::Bank],
    after: i64,
) -> Result<u64, resolve::WorkbenchError> {
    let mut done = 0;
    for bank in banks {
        let Some(rule) = &bank.auto_resolve else {
            continue;
        };
        let candidates: Vec<(i64, i64, i64)> = {
            let mut conn = store.pool().acquire().await.op("connecting")?;
            let all: Vec<(i64, i64, i64)> = q::open_exceptions_of_bank(&mut conn, &bank.id)
                .await?
                .into_iter()
                .filter(|e| e.0 > after)
                .collect();
            let skip = all.len().saturating_sub(PER_RUN);
            all.into_iter().skip(skip).collect()
        };
        let actor = Actor {
            name: format!("auto-rule:{}", bank.id),
            role: Role::Clerk,
        };
        for (exception_id, payment_id, amount_minor) in candidates {
            let all = {
                let mut conn = store.pool().acquire().await.op("connecting")?;
                suggest::suggest(&mut conn, payment_id, &bank.reference_patterns, 50).await?
            };
            let Some(pick) = suggest::auto_pick(&all, amount_minor, rule.min_name_similarity)
            else {
                continue;
            };
            let Some(bill_id) = pick.bill_id.clone() else {
                continue;
            };
            let comment = format!(
                "auto-rule of bank {}: the amount equals bill {bill_id}'s open balance and the payer's name resembles the holder's ({:.2} >= {:.2}); the only such candidate",
                bank.id,
                pick.name_similarity(),
                rule.min_name_similarity
            );
            match resolve::resolve(
                store,
                config,
                &actor,
                exception_id,
                &resolve::Action::ApplyBill { bill_id },
                &comment,
            )
            .await
            {
                Ok(_) => done += 1,
                // resolved by a person meanwhile, or the bill moved on: leave it to people
                Err(resolve::WorkbenchError::Conflict(_) | resolve::WorkbenchError::Invalid(_)) => {
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(done)
}

/// Exceptions looked at per matching run, newest first, of those the run raised: the
/// auto-rules and the suggested accounts compare references with every open bill's key, so a
/// run's cost stays bounded (the web page and the API suggest on demand in any case).
pub const PER_RUN: usize = 200;

/// After a matching run that raised exceptions (those with an id above `after`): the banks'
/// auto-rules, then the suggested accounts that order the queue (the newest [`PER_RUN`]).
pub async fn after_matching(
    store: &Store,
    config: &crate::config::Config,
    banks: &[crate::config::Bank],
    after: i64,
) -> Result<Housekeeping, resolve::WorkbenchError> {
    let auto_resolved = auto_resolve(store, config, banks, after).await?;
    let suggested = suggest::refresh_new_suggested_accounts(store, banks, after, PER_RUN).await?;
    Ok(Housekeeping {
        suggested,
        auto_resolved,
    })
}

/// The highest exception id so far (0 when none): what a matching run raises comes after it.
pub async fn last_exception_id(store: &Store) -> Result<i64, StoreError> {
    let mut conn = store.pool().acquire().await.op("connecting")?;
    q::last_exception_id(&mut conn).await
}
