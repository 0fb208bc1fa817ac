//! From plan to outbox to gateway.
//!
//! [`run`] turns a day's plan into notices: one per customer and channel (all its overdue
//! bills in one message), rendered from the stage's template in the configured language,
//! written to the `notices` outbox in one transaction. The idempotency key names the account,
//! stage, bills and channel, so running the same day again (or a later day at the same stage
//! for the same bills) queues nothing twice; and a customer reminded in the last
//! `notice_interval_days` days is not reminded again.
//!
//! [`deliver_due`] posts what is due to the gateway. Right before sending it checks again that
//! every bill of the notice is still open and that no payment still unsettled names the
//! customer (a notice whose bill got paid is cancelled; one with a suspect payment waits).
//! SMS waits for the end of quiet hours. A 2xx answer marks the notice sent, and a sent notice
//! is never touched again; timeouts, 5xx and 429 are retried with exponential backoff; other
//! 4xx and `max_attempts` failures make it dead (the dead letter, for a person to look at).

use super::policy::GatewayConfig;
use super::{plan, Action, Hold, PlanItem};
use crate::config::Config;
use crate::store::notices::{NewNotice, NoticeRow};
use crate::store::{self, DbContext, Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What a dunning run queued.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    pub notices: u64,
    pub manager_tasks: u64,
    /// Already queued earlier (same idempotency key).
    pub already_queued: u64,
    /// Customers reminded within the notice interval.
    pub too_soon: u64,
    pub waiting: u64,
    /// Customers published to field operations as eligible for disconnection.
    pub disconnections: u64,
    /// Cancellations of a disconnection warning (the customer paid).
    pub cancellations: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DunningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
}

fn env(config: &Config) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_loader(minijinja::path_loader(&config.dunning.templates_dir));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

/// Queues the notices and manager tasks of `date`'s plan.
pub async fn run(
    config: &Config,
    store: &Store,
    date: NaiveDate,
) -> Result<RunSummary, DunningError> {
    let items = plan(config, store, date).await?;
    let d = &config.dunning;
    let day = date.format("%Y-%m-%d").to_string();
    let env = env(config);
    let mut summary = RunSummary::default();
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let last: HashMap<String, String> = store::notices::last_reminders(&mut tx)
        .await?
        .into_iter()
        .collect();
    // per customer, one message for the bills owing principal and one for those owing only a
    // late fee (their own stage and template)
    let mut by_account: BTreeMap<(&str, bool), Vec<&PlanItem>> = BTreeMap::new();
    for i in &items {
        match i.action {
            Action::Notice | Action::ManagerTask => by_account
                .entry((i.account_no.as_str(), i.fee_only))
                .or_default()
                .push(i),
            Action::Wait => summary.waiting += 1,
            Action::None => {}
        }
    }
    for ((account, fee_only), bills) in by_account {
        if let Some(prev) = last
            .get(account)
            .and_then(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d").ok())
        {
            // a rerun of the same day goes on: its notices are already queued (same keys)
            let gap = (date - prev).num_days();
            if gap > 0 && gap < d.notice_interval_days {
                summary.too_soon += 1;
                continue;
            }
        }
        // the furthest stage among the customer's bills speaks for all of them
        let lead = bills
            .iter()
            .max_by_key(|b| b.days_overdue)
            .copied()
            .unwrap_or(bills[0]);
        let rules = d.for_class(&lead.class);
        let stage = if fee_only {
            d.late_fee_stage.as_ref()
        } else {
            rules
                .stages
                .iter()
                .find(|s| Some(&s.name) == lead.stage.as_ref())
        };
        let manager = lead.action == Action::ManagerTask;
        let (kind, template, channels) = if manager {
            (
                "manager_task",
                "manager_task".to_string(),
                vec!["manager".to_string()],
            )
        } else {
            (
                "dunning",
                stage.map(|s| s.template.clone()).unwrap_or_default(),
                lead.channels.clone(),
            )
        };
        let mut bill_ids: Vec<String> = bills.iter().map(|b| b.bill_id.clone()).collect();
        bill_ids.sort();
        let total = |f: fn(&PlanItem) -> &str| -> String {
            let sum: rust_decimal::Decimal = bills
                .iter()
                .filter_map(|b| f(b).parse::<rust_decimal::Decimal>().ok())
                .sum();
            format!("{sum:.2}")
        };
        let data = serde_json::json!({
            "customer": lead.customer,
            "account_no": account,
            "date": day,
            "stage": lead.stage,
            "days_overdue": lead.days_overdue,
            "total_owed": total(|b| &b.outstanding),
            "total_late_fee": total(|b| &b.late_fee),
            "hotline": d.hotline,
            "manager": lead.manager.clone().unwrap_or_default(),
            "needs_ack": stage.is_some_and(|s| s.disconnection_notice_days.is_some()),
            "notice_days": stage.and_then(|s| s.disconnection_notice_days).unwrap_or(0),
            "bills": bills.iter().map(|b| serde_json::json!({
                "bill_id": b.bill_id, "due_on": b.due_on, "outstanding": b.outstanding,
                "late_fee": b.late_fee, "days_overdue": b.days_overdue,
            })).collect::<Vec<_>>(),
        });
        let language = lead.language.clone().unwrap_or_else(|| d.language.clone());
        let name = format!("{template}.{language}.txt");
        let body = env
            .get_template(&name)
            .and_then(|t| t.render(&data))
            .map_err(|e| DunningError::Template {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        for channel in channels {
            let key = format!(
                "{kind}:{account}:{}:{}:{channel}",
                lead.stage.as_deref().unwrap_or(""),
                bill_ids.join(",")
            );
            let n = NewNotice {
                kind: kind.into(),
                account_no: account.to_string(),
                bill_ids: bill_ids.clone(),
                stage: lead.stage.clone(),
                channel: channel.clone(),
                language: language.clone(),
                body: body.clone(),
                payload: data.to_string(),
                idempotency_key: key,
                planned_for: day.clone(),
            };
            match store::notices::insert(&mut tx, &n).await? {
                Some(_) if manager => summary.manager_tasks += 1,
                Some(_) => summary.notices += 1,
                None => summary.already_queued += 1,
            }
        }
    }
    tx.commit().await.op("committing notices")?;
    drop(_w);
    let (published, cancelled) = field_ops_events(config, store, date).await?;
    summary.disconnections = published;
    summary.cancellations = cancelled;
    Ok(summary)
}

/// Queues a receipt for every payment applied (or held as credit) in the last two days that
/// has none yet, on each of `dunning.receipt_channels`. Returns how many were queued.
pub async fn queue_receipts(config: &Config, store: &Store) -> Result<u64, DunningError> {
    let d = &config.dunning;
    if d.receipt_channels.is_empty() {
        return Ok(0);
    }
    let since = ts(Utc::now() - chrono::Duration::days(2));
    let env = env(config);
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let due = store::notices::receipts_due(&mut tx, &since).await?;
    let mut queued = 0;
    for r in due {
        let language = r.language.clone().unwrap_or_else(|| d.language.clone());
        let name = format!("receipt.{language}.txt");
        let template = env
            .get_template(&name)
            .map_err(|e| DunningError::Template {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        let data = serde_json::json!({
            "customer": r.customer,
            "account_no": r.account_no,
            "amount": crate::domain::money_text(r.amount_minor, &r.currency),
            "applied": crate::domain::money_text(r.applied_minor, &r.currency),
            "credit": crate::domain::money_text(r.credit_minor, &r.currency),
            "has_credit": r.credit_minor > 0,
            "date": r.booking_date.clone().unwrap_or_default(),
            "bank_id": r.bank_id,
            "hotline": d.hotline,
        });
        let body = template.render(&data).map_err(|e| DunningError::Template {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        for channel in &d.receipt_channels {
            let n = NewNotice {
                kind: "receipt".into(),
                account_no: r.account_no.clone(),
                bill_ids: vec![],
                stage: None,
                channel: channel.clone(),
                language: language.clone(),
                body: body.clone(),
                payload: data.to_string(),
                idempotency_key: format!("receipt:{}:{channel}", r.payment_id),
                planned_for: Utc::now().format("%Y-%m-%d").to_string(),
            };
            if let Some(id) = store::notices::insert(&mut tx, &n).await? {
                store::notices::set_payment(&mut tx, id, r.payment_id).await?;
                queued += 1;
            }
        }
    }
    tx.commit().await.op("committing receipts")?;
    Ok(queued)
}

/// Field operations' events. A customer whose disconnection warning was delivered at least
/// its notice period ago, and who still owes every bill it named (checked now, and no payment
/// not yet applied names them), is published as eligible for disconnection (`disconnection`).
/// When a bill of a warned customer is paid, a `disconnection_cancelled` event follows, once.
/// Both go to the `field_ops` webhook. Returns (published, cancelled).
pub async fn field_ops_events(
    config: &Config,
    store: &Store,
    today: NaiveDate,
) -> Result<(u64, u64), DunningError> {
    let d = &config.dunning;
    // the disconnection stages and their notice periods, by stage name
    let notice_days: HashMap<&str, i64> = d
        .stages
        .iter()
        .chain(d.class.values().filter_map(|c| c.stages.as_ref()).flatten())
        .filter_map(|s| s.disconnection_notice_days.map(|n| (s.name.as_str(), n)))
        .collect();
    if notice_days.is_empty() {
        return Ok((0, 0));
    }
    let warnings: Vec<NoticeRow> = {
        let mut conn = store.pool().acquire().await.op("connecting")?;
        store::notices::sent_of_kind(&mut conn, "dunning")
            .await?
            .into_iter()
            .filter(|w| {
                w.stage
                    .as_deref()
                    .is_some_and(|s| notice_days.contains_key(s))
            })
            .collect()
    };
    if warnings.is_empty() {
        return Ok((0, 0));
    }
    let waiting: HashMap<String, String> = plan(config, store, today)
        .await?
        .into_iter()
        .filter(|i| i.hold == Some(Hold::UnsettledPayment))
        .map(|i| (i.account_no, i.reason))
        .collect();
    let day = today.format("%Y-%m-%d").to_string();
    let _w = store.writer().await;
    let mut tx = store.begin().await?;
    let (mut published, mut cancelled) = (0, 0);
    for warning in warnings {
        let Some(days) = warning.stage.as_deref().and_then(|s| notice_days.get(s)) else {
            continue;
        };
        let ids: Vec<String> = warning
            .bill_ids
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let statuses = store::notices::bill_statuses(&mut tx, &ids).await?;
        let paid: Vec<&String> = statuses
            .iter()
            .filter(|(_, s)| s != "open")
            .map(|(b, _)| b)
            .collect();
        let sent_on = warning
            .sent_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&config.daemon.tz()).date_naive());
        let data = serde_json::json!({
            "account_no": warning.account_no,
            "bill_ids": ids,
            "warning_notice_id": warning.id,
            "warning_delivered_at": warning.sent_at,
            "notice_period_days": days,
            "paid_bills": paid,
            "date": day,
        });
        let (kind, key, text) = if !paid.is_empty() {
            (
                "disconnection_cancelled",
                format!("disconnection_cancelled:{}:{}", warning.account_no, ids.join(",")),
                format!(
                    "account {}: bill(s) {} paid after the disconnection warning of {}; do not disconnect",
                    warning.account_no,
                    paid.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    warning.sent_at.as_deref().unwrap_or("")
                ),
            )
        } else if sent_on.is_some_and(|s| (today - s).num_days() >= *days)
            && !waiting.contains_key(&warning.account_no)
        {
            (
                "disconnection",
                format!("disconnection:{}:{}", warning.account_no, ids.join(",")),
                format!(
                    "account {} is eligible for disconnection: warning delivered {}, {days} days' notice over, bills {} unpaid",
                    warning.account_no,
                    warning.sent_at.as_deref().unwrap_or(""),
                    ids.join(", ")
                ),
            )
        } else {
            continue;
        };
        let n = NewNotice {
            kind: kind.into(),
            account_no: warning.account_no.clone(),
            bill_ids: ids.clone(),
            stage: warning.stage.clone(),
            channel: "field_ops".into(),
            language: "en".into(),
            body: text,
            payload: data.to_string(),
            idempotency_key: key,
            planned_for: day.clone(),
        };
        if store::notices::insert(&mut tx, &n).await?.is_some() {
            if kind == "disconnection" {
                published += 1;
            } else {
                cancelled += 1;
            }
        }
    }
    tx.commit().await.op("committing field operations events")?;
    Ok((published, cancelled))
}

/// What a delivery pass did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct DeliverySummary {
    pub sent: u64,
    pub retrying: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub deferred: u64,
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Delivers the notices due at `now` through the gateway.
pub async fn deliver_due(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<DeliverySummary, DunningError> {
    let mut out = DeliverySummary::default();
    let d = &config.dunning;
    if d.gateway.is_none() && d.field_ops.is_none() {
        return Ok(out);
    }
    let setup = |gw: &GatewayConfig| -> Result<(reqwest::Client, String), DunningError> {
        let bad = |reason: String| DunningError::Template {
            name: "gateway".into(),
            reason,
        };
        let secret = gw.secret().map_err(bad)?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(gw.timeout_secs))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok((client, secret))
    };
    let gateway = d
        .gateway
        .as_ref()
        .map(|g| setup(g).map(|c| (g, c)))
        .transpose()?;
    let field_ops = d
        .field_ops
        .as_ref()
        .map(|g| setup(g).map(|c| (g, c)))
        .transpose()?;
    let due = {
        let mut conn = store.pool().acquire().await.op("connecting")?;
        store::notices::due(&mut conn, &ts(now), 500).await?
    };
    // today's plan, once: customers with a payment not yet applied that may be theirs, and
    // everybody while a bank's file for the previous business day is missing, wait
    let today = now.with_timezone(&config.daemon.tz()).date_naive();
    let waiting: HashMap<String, String> = if due.iter().any(|n| n.kind != "receipt") {
        plan(config, store, today)
            .await?
            .into_iter()
            .filter(|i| i.hold.is_some())
            .map(|i| (i.account_no, i.reason))
            .collect()
    } else {
        HashMap::new()
    };
    for n in due {
        // field operations' events go to their webhook, everything else to the gateway
        let target = if n.channel == "field_ops" {
            field_ops.as_ref()
        } else {
            gateway.as_ref()
        };
        let Some((gw, (client, secret))) = target else {
            continue;
        };
        let decision = precheck(config, store, &n, now, &waiting).await?;
        let mut conn = store.write_pool().acquire().await.op("connecting")?;
        match decision {
            Precheck::Cancel(reason) => {
                store::notices::record(
                    &mut conn,
                    n.id,
                    "cancelled",
                    n.attempts,
                    &n.next_attempt_at,
                    None,
                    None,
                    Some(&reason),
                )
                .await?;
                out.cancelled += 1;
                continue;
            }
            Precheck::Defer(until, why) => {
                store::notices::record(
                    &mut conn,
                    n.id,
                    &n.status,
                    n.attempts,
                    &ts(until),
                    Some(&why),
                    None,
                    None,
                )
                .await?;
                out.deferred += 1;
                continue;
            }
            Precheck::Send => {}
        }
        drop(conn);
        let attempts = n.attempts + 1;
        let result = post(client, gw, secret, &n).await;
        let mut conn = store.write_pool().acquire().await.op("connecting")?;
        match result {
            Ok(()) => {
                store::notices::record(
                    &mut conn,
                    n.id,
                    "sent",
                    attempts,
                    &n.next_attempt_at,
                    None,
                    Some(&ts(now)),
                    None,
                )
                .await?;
                out.sent += 1;
            }
            Err((retry, err)) if retry && attempts < gw.max_attempts => {
                let delay = gw.backoff_secs.saturating_mul(1 << (attempts - 1).min(16));
                let next = now + chrono::Duration::seconds(delay);
                store::notices::record(
                    &mut conn,
                    n.id,
                    "failed",
                    attempts,
                    &ts(next),
                    Some(&err),
                    None,
                    None,
                )
                .await?;
                out.retrying += 1;
            }
            Err((_, err)) => {
                tracing::warn!(notice = n.id, error = %err, "notice given up (dead letter)");
                store::notices::record(
                    &mut conn,
                    n.id,
                    "dead",
                    attempts,
                    &n.next_attempt_at,
                    Some(&err),
                    None,
                    None,
                )
                .await?;
                out.dead += 1;
            }
        }
    }
    Ok(out)
}

enum Precheck {
    Send,
    Cancel(String),
    Defer(DateTime<Utc>, String),
}

async fn precheck(
    config: &Config,
    store: &Store,
    n: &NoticeRow,
    now: DateTime<Utc>,
    waiting: &HashMap<String, String>,
) -> Result<Precheck, DunningError> {
    if ["dunning", "manager_task", "disconnection"].contains(&n.kind.as_str()) {
        let ids: Vec<String> = n.bill_ids.split_whitespace().map(str::to_string).collect();
        let mut conn = store.pool().acquire().await.op("connecting")?;
        let statuses = store::notices::bill_statuses(&mut conn, &ids).await?;
        // a late-fee notice stands while the fee is owed, any other while principal is
        let wanted = match (&config.dunning.late_fee_stage, &n.stage) {
            (Some(s), Some(stage)) if &s.name == stage => "fee_owed",
            _ => "open",
        };
        if let Some((b, s)) = statuses.iter().find(|(_, s)| s != wanted) {
            return Ok(Precheck::Cancel(format!("bill {b} is {s}")));
        }
        drop(conn);
        if let Some(why) = waiting.get(&n.account_no) {
            return Ok(Precheck::Defer(
                now + chrono::Duration::hours(1),
                why.clone(),
            ));
        }
    }
    if n.channel == "sms" {
        let d = &config.dunning;
        let local = now.with_timezone(&config.daemon.tz());
        let t = local.time();
        let quiet = if d.quiet_hours_start <= d.quiet_hours_end {
            t >= d.quiet_hours_start && t < d.quiet_hours_end
        } else {
            t >= d.quiet_hours_start || t < d.quiet_hours_end
        };
        if quiet {
            let mut end = local.date_naive().and_time(d.quiet_hours_end);
            if end <= local.naive_local() {
                end += chrono::Duration::days(1);
            }
            let until = end
                .and_local_timezone(config.daemon.tz())
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now + chrono::Duration::hours(1));
            return Ok(Precheck::Defer(
                until,
                "quiet hours: no SMS at night".into(),
            ));
        }
    }
    Ok(Precheck::Send)
}

/// Posts one notice. Err((retryable, reason)).
async fn post(
    client: &reqwest::Client,
    gw: &GatewayConfig,
    secret: &str,
    n: &NoticeRow,
) -> Result<(), (bool, String)> {
    use hmac::{Hmac, Mac};
    let body = serde_json::json!({
        "id": n.id,
        "idempotency_key": n.idempotency_key,
        "kind": n.kind,
        "channel": n.channel,
        "account_no": n.account_no,
        "language": n.language,
        "stage": n.stage,
        "text": n.body,
        "data": serde_json::from_str::<serde_json::Value>(&n.payload).unwrap_or_default(),
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| (false, format!("signing key: {e}")))?;
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let resp = client
        .post(&gw.url)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", &n.idempotency_key)
        .header("X-Billrecon-Signature", format!("sha256={signature}"))
        .body(body)
        .send()
        .await
        .map_err(|e| (true, format!("gateway unreachable: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        let retry = status.is_server_error() || status.as_u16() == 429;
        Err((retry, format!("gateway answered HTTP {}", status.as_u16())))
    }
}
