//! The web pages for finance staff, served by the daemon under `/ui/`:
//! - `/ui/` the morning check ([`crate::reports::dashboard`]): yesterday's and today's
//!   settlement per bank with the files' declared-versus-read difference, the banks' health,
//!   the exceptions queue by reason and age (oldest first), the collection rate's 30-day
//!   trend, the partner banks' real-time versus file results; every figure links to its
//!   detail;
//! - `/ui/queue` the exceptions queue with filters (reason, bank, booking days, text, ...);
//! - `/ui/exceptions/{id}` an exception's detail with its suggestions, the one resolution
//!   that is clear for it (one click), its history;
//! - `/ui/reports/{kind}?date=` a report's page in the page's language;
//! - `/ui/banks/{id}` a bank's recent pulls.
//!
//! Every text is in the page's language (`?lang=zh|en`, default `reports.language`): the
//! labels, and the reasons, details, statuses, directions and actions (through
//! [`crate::reports::labels`]); amounts with thousands separators and the currency, dates as
//! people write them. Server-rendered (minijinja, the templates are compiled in), a few lines
//! of JavaScript.
//!
//! Login is by API token (`billrecon users add`), which opens a session cookie
//! ([`super::auth`]); the forms post back to the same origin (checked there).

use super::auth::{Role, User};
use super::error::ApiError;
use super::workbench::{actor, detail_view, QueueQuery};
use crate::app::state::DaemonState;
use crate::domain::money_text;
use crate::reports::{labels, ReportKind};
use crate::store::workbench as q;
use crate::workbench::resolve::{self, Action, SplitPart, WorkbenchError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub fn routes() -> Router<Arc<DaemonState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(dashboard_page))
        .route("/ui/queue", get(queue_page))
        .route("/ui/reports/{kind}", get(report_page))
        .route("/ui/banks/{id}", get(bank_page))
        .route("/ui/login", get(login_page))
        .route("/ui/exceptions/{id}", get(detail_page))
        .route("/ui/exceptions/{id}/resolve", post(resolve_form))
        .route("/ui/resolutions/{id}/{step}", post(step_form))
}

const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("queue.html", include_str!("templates/queue.html")),
    ("detail.html", include_str!("templates/detail.html")),
    ("bank.html", include_str!("templates/bank.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .expect("the workbench templates are valid (a unit test renders each)");
        }
        // codes, details, amounts and dates in the page's language
        env.add_filter("word", |v: Option<String>, set: String, lang: String| {
            v.map(|v| labels::word(&set, &v, &lang)).unwrap_or_default()
        });
        env.add_filter("detail", |v: Option<String>, lang: String| {
            v.map(|v| labels::detail(&v, &lang)).unwrap_or_default()
        });
        env.add_filter("day", |v: Option<String>, lang: String| {
            v.map(|v| labels::date(&v, &lang)).unwrap_or_default()
        });
        env.add_filter("when", |v: Option<String>, lang: String, tz: String| {
            let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
            v.map(|v| labels::local_time(&v, &lang, tz))
                .unwrap_or_default()
        });
        env.add_filter("money", |v: i64, ccy: String, lang: String| {
            labels::money(&money_text(v, &ccy), &ccy, &lang)
        });
        env
    })
}

#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

fn language(state: &DaemonState, asked: Option<&str>) -> &'static str {
    match asked.unwrap_or(state.app.config.reports.language.as_str()) {
        "en" => "en",
        _ => "zh",
    }
}

/// The labels of one language.
fn labels(lang: &str) -> BTreeMap<&'static str, &'static str> {
    const L: &[(&str, &str, &str)] = &[
        ("queue", "异常队列", "Exceptions queue"),
        ("dashboard", "晨检", "Morning check"),
        ("dashboard_title", "今日晨检", "The morning check"),
        ("settlement_of", "结算", "Settlement"),
        ("yesterday", "昨日", "Yesterday"),
        ("today", "今日", "Today"),
        (
            "no_payments_day",
            "该记账日尚无入账（银行文件通常次日到达）。",
            "Nothing booked on this day yet (a bank's file normally arrives the next day).",
        ),
        ("read", "读取贷方", "Credits read"),
        ("declared", "文件声明贷方", "Credits declared"),
        ("files", "文件数", "Files"),
        (
            "adds_up",
            "收款=销账+预存+挂账+退款+核销",
            "received = applied + credit + held + refunded + written off",
        ),
        ("banks_health", "银行状况", "The banks"),
        ("last_file", "最近文件", "Last file"),
        ("reached", "已到记账日", "Booked up to"),
        ("late_file", "文件迟到", "File late"),
        ("expected_day", "应到", "expected"),
        ("on_time_file", "已到", "in"),
        ("failures", "连续失败", "Failures in a row"),
        ("last_error", "最近错误", "Last error"),
        ("last_success", "最近成功", "Last success"),
        ("healthy", "正常", "healthy"),
        ("unhealthy", "异常", "unhealthy"),
        ("next_run", "下次拉取", "Next pull"),
        ("runs", "拉取记录", "Pulls"),
        ("started", "开始", "Started"),
        ("trigger", "触发", "Trigger"),
        ("outcome", "结果", "Outcome"),
        ("error", "错误", "Error"),
        ("payments", "付款数", "Payments"),
        (
            "queue_by_reason",
            "异常队列（按原因与账龄，最久的在前）",
            "The exceptions queue by reason and age, oldest first",
        ),
        ("count", "笔数", "Count"),
        ("oldest", "最早记账日", "Oldest booked"),
        ("days_old", "天", "d"),
        (
            "oldest_items",
            "最久未处理的异常",
            "The oldest open exceptions",
        ),
        ("collection_trend", "回收率", "Collection rate"),
        ("billed", "应收", "Billed"),
        ("collected", "实收", "Collected"),
        ("window", "统计期间", "Window"),
        (
            "partners",
            "合作银行实时与对账文件",
            "Partner banks: real-time versus file",
        ),
        ("business_day", "营业日", "Business day"),
        ("matched", "相符", "Matched"),
        ("discrepancies", "差异", "Differences"),
        ("net", "净收款", "Net collected"),
        ("fee", "手续费", "Fee"),
        ("transfer", "应划转", "Transfer expected"),
        ("settlement_status", "清算状态", "Settlement"),
        (
            "no_partners",
            "近 7 天没有合作银行的日终对账。",
            "No partner bank's end of day in the last 7 days.",
        ),
        ("report", "报表", "Report"),
        ("all_banks", "全部银行", "All banks"),
        ("booked_from", "记账日从", "Booked from"),
        ("booked_to", "至", "to"),
        ("oldest_first", "最久的在前", "Oldest first"),
        ("recommended", "推荐处理", "Recommended"),
        ("one_click", "一键处理", "Resolve in one click"),
        ("direction", "方向", "Direction"),
        ("detail", "说明", "Detail"),
        ("logout", "退出", "Log out"),
        ("login_title", "对账工作台登录", "Reconciliation workbench"),
        ("login", "登录", "Log in"),
        ("user_name", "用户名", "User name"),
        ("token", "令牌", "Token"),
        (
            "login_failed",
            "用户名或令牌无效，或令牌已吊销。",
            "The user name or the token is not valid, or the token was revoked.",
        ),
        (
            "login_hint",
            "令牌由管理员用 billrecon users add 发放。",
            "An administrator issues tokens with `billrecon users add`.",
        ),
        ("settlement_today", "今日结算", "Today's settlement"),
        (
            "no_payments_today",
            "今日尚无入账。",
            "No payments booked today yet.",
        ),
        ("bank", "银行", "Bank"),
        ("currency", "币种", "Currency"),
        ("received_count", "笔数", "Count"),
        ("received", "收款", "Received"),
        ("applied", "已销账", "Applied"),
        ("credit", "预存", "Credit"),
        ("held", "异常挂账", "Held"),
        ("difference", "差额", "Difference"),
        ("status", "状态", "Status"),
        ("status_open", "未处理", "Open"),
        ("status_resolved", "已处理", "Resolved"),
        ("status_all", "全部", "All"),
        ("reason", "原因", "Reason"),
        ("any", "全部", "Any"),
        ("min_amount", "最低金额", "Min. amount"),
        ("search", "搜索", "Search"),
        ("escalated", "已升级", "Escalated"),
        ("filter", "筛选", "Filter"),
        ("booked", "记账日", "Booked"),
        ("payer", "付款人", "Payer"),
        ("reference", "附言/参考号", "Reference"),
        ("amount", "金额", "Amount"),
        ("age", "账龄", "Age"),
        ("open_item", "处理", "Open"),
        ("queue_empty", "队列为空。", "The queue is empty."),
        ("key_account", "重点客户", "Key account"),
        ("exception", "异常", "Exception"),
        ("payment", "付款", "Payment"),
        ("reversal", "冲正", "reversal"),
        ("suggestions", "建议", "Suggestions"),
        ("score", "评分", "Score"),
        ("bill", "账单", "Bill"),
        ("account", "户号", "Account"),
        ("open_balance", "未缴余额", "Open balance"),
        ("why", "理由", "Why"),
        ("resolve", "处理", "Resolve"),
        ("apply", "销账", "Apply"),
        ("comment", "说明", "Comment"),
        (
            "no_suggestions",
            "没有建议：请手工处理。",
            "No suggestions: resolve by hand.",
        ),
        ("other_resolution", "其他处理方式", "Other resolution"),
        ("action", "操作", "Action"),
        ("target", "账单/户号", "Bill / account"),
        (
            "target_hint",
            "账单号、户号或拆分",
            "bill, account or split",
        ),
        (
            "target_help",
            "拆分：账单=金额,账单=金额;rest=户号。退款可填收款账户。",
            "Split: BILL=AMOUNT,BILL=AMOUNT;rest=ACCOUNT. A refund may name where to.",
        ),
        ("resolutions", "处理记录", "Resolutions"),
        ("by", "操作人", "By"),
        ("at", "时间", "At"),
        ("reopen", "重新打开", "Reopen"),
        (
            "confirm_reopen",
            "撤销此处理并放回队列？",
            "Undo this resolution and put the payment back in the queue?",
        ),
        ("approve", "批准", "Approve"),
        ("decline", "驳回", "Decline"),
        ("payout_ref", "退款流水号", "payout reference"),
        ("refund_paid", "已退款", "Refund paid"),
        ("history", "审计记录", "Audit trail"),
        ("before", "之前", "Before"),
        ("after", "之后", "After"),
        ("none", "无", "None"),
        ("done", "已处理。", "Done."),
        (
            "proposed",
            "已提交，待主管批准。",
            "Proposed: awaiting a supervisor's approval.",
        ),
        ("role_viewer", "查看", "viewer"),
        ("role_clerk", "经办", "clerk"),
        ("role_supervisor", "主管", "supervisor"),
        ("role_admin", "管理员", "admin"),
        ("action_apply_bill", "销账到账单", "Apply to a bill"),
        ("action_apply_account", "销账到户号", "Apply to an account"),
        ("action_split", "拆分到多张账单", "Split across bills"),
        ("action_credit", "转为预存", "Hold as credit"),
        ("action_refund", "退款", "Refund to the payer"),
        (
            "action_write_off",
            "核销小额差额",
            "Write off a small difference",
        ),
        ("action_reject_duplicate", "剔除重复", "Reject as duplicate"),
    ];
    L.iter()
        .map(|(k, zh, en)| (*k, if lang == "en" { *en } else { *zh }))
        .collect()
}

const ACTIONS: &[&str] = &[
    "apply_bill",
    "apply_account",
    "split",
    "credit",
    "refund",
    "write_off",
    "reject_duplicate",
];

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(anyhow::anyhow!("rendering {name}: {e:#}")).into_response(),
    }
}

/// The page's user, or the login page (a response either way: its size does not matter).
#[allow(clippy::result_large_err)]
fn user_or_login(user: Result<User, ApiError>) -> Result<User, Response> {
    match user {
        Ok(u) => Ok(u),
        Err(ApiError::Unauthorized(_)) => Err(Redirect::to("/ui/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

fn user_ctx(u: &User) -> minijinja::Value {
    context! { name => u.name.clone(), role => u.role.as_str() }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    failed: Option<String>,
    lang: Option<String>,
}

async fn login_page(
    State(state): State<Arc<DaemonState>>,
    Query(qy): Query<LoginQuery>,
) -> Response {
    let lang = language(&state, qy.lang.as_deref());
    render(
        "login.html",
        context! { lang, L => labels(lang), title => labels(lang)["login_title"], failed => qy.failed.is_some() },
    )
}

#[derive(Debug, Deserialize)]
struct QueuePageQuery {
    lang: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    bank: Option<String>,
    escalated: Option<bool>,
    min_amount: Option<String>,
    q: Option<String>,
    booked_from: Option<String>,
    booked_to: Option<String>,
    sort: Option<String>,
    message: Option<String>,
}

/// A date field of a form: empty is none; anything else must be a date.
fn date_field(name: &str, v: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} `{d}` is not a date (YYYY-MM-DD)"))),
    }
}

/// How old an item of the queue is: days since its payment's booking day (the reports'
/// clock), or hours since it was raised when the line has no booking day.
fn age_text(
    booked: Option<&str>,
    created_at: &str,
    today: chrono::NaiveDate,
    lang: &str,
) -> String {
    if let Some(b) = booked.and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()) {
        let d = (today - b).num_days().max(0);
        return if lang == "en" {
            format!("{d} d")
        } else {
            format!("{d} 天")
        };
    }
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created_at) else {
        return String::new();
    };
    let h = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_hours()
        .max(0);
    match (h >= 48, lang) {
        (true, "en") => format!("{} d", h / 24),
        (true, _) => format!("{} 天", h / 24),
        (false, "en") => format!("{h} h"),
        (false, _) => format!("{h} 小时"),
    }
}

async fn queue_page(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Query(qy): Query<QueuePageQuery>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, qy.lang.as_deref());
    let min_amount = match qy
        .min_amount
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(m) => match m.parse() {
            Ok(d) => Some(d),
            Err(_) => {
                return ApiError::BadRequest(format!("min_amount `{m}` is not an amount"))
                    .into_response()
            }
        },
        None => None,
    };
    let query = QueueQuery {
        status: qy.status.clone(),
        reason: qy.reason.clone(),
        bank: qy.bank.clone(),
        escalated: qy.escalated,
        min_amount,
        q: qy.q.clone(),
        booked_from: match date_field("booked_from", qy.booked_from.as_deref()) {
            Ok(d) => d,
            Err(e) => return e.into_response(),
        },
        booked_to: match date_field("booked_to", qy.booked_to.as_deref()) {
            Ok(d) => d,
            Err(e) => return e.into_response(),
        },
        sort: qy.sort.clone(),
        limit: Some(500),
    };
    let result = async {
        let filter = query.filter(&state)?;
        let mut conn = state
            .app
            .store
            .pool()
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        Ok::<_, ApiError>(q::queue(&mut conn, &filter).await?)
    }
    .await;
    let items = match result {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let items: Vec<minijinja::Value> = items
        .into_iter()
        .map(|i| {
            let amount = labels::money(
                &money_text(i.exception.amount_minor, &i.exception.currency),
                &i.exception.currency,
                lang,
            );
            let age = age_text(
                i.booking_date.as_deref(),
                &i.exception.created_at,
                today(&state),
                lang,
            );
            context! { amount, age, ..minijinja::Value::from_serialize(&i) }
        })
        .collect();
    let reasons = [
        "unknown_reference",
        "ambiguous_reference",
        "currency_mismatch",
        "unexpected_debit",
        "duplicate",
        "zero_amount",
        "reversal_unmatched",
        "reversal_ambiguous",
        "reversal_of_exception",
    ];
    let banks: Vec<String> = state.app.banks.iter().map(|b| b.id.clone()).collect();
    let message = qy
        .message
        .as_deref()
        .and_then(|m| labels(lang).get(m).copied());
    let f = context! {
        status => qy.status.clone().unwrap_or_else(|| "open".into()),
        reason => qy.reason, bank => qy.bank, escalated => qy.escalated.unwrap_or(false),
        min_amount => qy.min_amount, q => qy.q,
        booked_from => qy.booked_from, booked_to => qy.booked_to,
        oldest => qy.sort.as_deref() == Some("oldest"),
    };
    render(
        "queue.html",
        context! {
            lang, L => labels(lang), title => labels(lang)["queue"], user => user_ctx(&user),
            items, reasons, banks, f, message, page => "queue",
        },
    )
}

#[derive(Debug, Deserialize, Default)]
struct DayQuery {
    lang: Option<String>,
    /// another day than today
    date: Option<String>,
}

fn today(state: &DaemonState) -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&state.app.config.daemon.tz())
        .date_naive()
}

/// The morning check (the first page after login).
async fn dashboard_page(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Query(qy): Query<DayQuery>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, qy.lang.as_deref());
    let day = match date_field("date", qy.date.as_deref()) {
        Ok(d) => d.unwrap_or_else(|| today(&state)),
        Err(e) => return e.into_response(),
    };
    let mut d =
        match crate::reports::dashboard::dashboard(&state.app.config, &state.app.store, day, lang)
            .await
        {
            Ok(d) => d,
            Err(e) => return ApiError::internal(e).into_response(),
        };
    if let Ok(health) = state.banks.lock() {
        for b in &mut d.banks {
            if let Some(h) = health.get(&b.bank_id) {
                b.healthy = Some(h.healthy);
                b.next_run = h
                    .next_run_at
                    .as_deref()
                    .map(|t| labels::local_time(t, lang, state.app.config.daemon.tz()));
            }
        }
    }
    render(
        "dashboard.html",
        context! {
            lang, L => labels(lang), title => labels(lang)["dashboard_title"],
            user => user_ctx(&user), d => minijinja::Value::from_serialize(&d),
            page => "dashboard",
            self_query => qy.date.as_deref().map(|d| format!("date={d}")).unwrap_or_default(),
        },
    )
}

/// A report's page, in the page's language (the same page `publish` writes).
async fn report_page(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Path(kind): Path<String>,
    Query(qy): Query<DayQuery>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(e) = user.require(Role::Viewer) {
        return e.into_response();
    }
    let Ok(what) = <ReportKind as clap::ValueEnum>::from_str(&kind, false) else {
        return ApiError::NotFound(format!("no report `{kind}`")).into_response();
    };
    let lang = language(&state, qy.lang.as_deref());
    let date = match date_field("date", qy.date.as_deref()) {
        Ok(d) => d.unwrap_or_else(|| what.default_date(today(&state))),
        Err(e) => return e.into_response(),
    };
    match what.build(&state.app.config, &state.app.store, date).await {
        // a report runs no script: the strict policy, as where the API serves it
        Ok((columns, rows)) => (
            [(
                axum::http::header::CONTENT_SECURITY_POLICY,
                super::headers::STRICT_CSP,
            )],
            Html(crate::reports::html::report_page(
                what, date, columns, &rows, lang,
            )),
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// A bank's recent pulls and its health.
async fn bank_page(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Path(id): Path<String>,
    Query(qy): Query<LangQuery>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, qy.lang.as_deref());
    let Some(bank) = state.app.config.banks.iter().find(|b| b.id == id) else {
        return ApiError::NotFound(format!("no bank `{id}`")).into_response();
    };
    let runs = match state.app.store.pool().acquire().await {
        Ok(mut conn) => match crate::store::runs::of_bank(&mut conn, &id, 50).await {
            Ok(r) => r,
            Err(e) => return ApiError::internal(e).into_response(),
        },
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let health = state.banks.lock().ok().and_then(|h| h.get(&id).cloned());
    let runs: Vec<minijinja::Value> = runs
        .iter()
        .map(|r| {
            context! {
                started => labels::local_time(&r.started_at, lang, state.app.config.daemon.tz()),
                outcome => labels::word("run", &r.outcome, lang),
                ok => r.outcome == "ok",
                ..minijinja::Value::from_serialize(r)
            }
        })
        .collect();
    render(
        "bank.html",
        context! {
            lang, L => labels(lang), title => format!("{} · {}", bank.id, bank.name),
            user => user_ctx(&user), bank => context! { id => bank.id.clone(), name => bank.name.clone() },
            health => health.map(|h| context! {
                healthy => h.healthy,
                failures => h.consecutive_failures,
                last_error => h.last_error,
                next_run => h.next_run_at.as_deref().map(|t| labels::local_time(t, lang, state.app.config.daemon.tz())),
            }),
            runs, page => "bank",
        },
    )
}

#[derive(Debug, Deserialize)]
struct DetailQuery {
    lang: Option<String>,
    message: Option<String>,
}

async fn detail_page(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Path(id): Path<i64>,
    Query(qy): Query<DetailQuery>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, qy.lang.as_deref());
    let message = qy
        .message
        .as_deref()
        .and_then(|m| labels(lang).get(m).copied())
        .map(str::to_string);
    detail_response(&state, &user, id, lang, message, None, StatusCode::OK).await
}

async fn detail_response(
    state: &DaemonState,
    user: &User,
    id: i64,
    lang: &'static str,
    message: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let v = match detail_view(state, id).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let cur = v.detail.payment.currency.clone();
    let suggestions: Vec<minijinja::Value> = v
        .suggestions
        .iter()
        .map(|s| {
            let why = s
                .reasons
                .iter()
                .map(|r| r.describe(lang))
                .collect::<Vec<_>>()
                .join("; ");
            let open = labels::money(&money_text(s.open_minor, &s.currency), &s.currency, lang);
            context! { why, open, ..minijinja::Value::from_serialize(s) }
        })
        .collect();
    // the one resolution that is clear, as a form: action, target, comment
    let one_click = v.one_click.as_ref().map(|o| {
        use crate::workbench::resolve::Action;
        let target = match &o.action {
            Action::ApplyBill { bill_id } => bill_id.clone(),
            Action::ApplyAccount { account_no } | Action::Credit { account_no } => {
                account_no.clone()
            }
            _ => String::new(),
        };
        context! {
            action => o.action.name(),
            target,
            why => o.why.describe(lang),
            kind => minijinja::Value::from_serialize(&o.why),
        }
    });
    let needs_target: BTreeMap<&str, bool> = ACTIONS
        .iter()
        .map(|a| (*a, !matches!(*a, "refund" | "reject_duplicate")))
        .collect();
    let error = error.map(|e| labels::message(&e, lang));
    let mut resp = render(
        "detail.html",
        context! {
            lang, L => labels(lang), title => format!("#{id}"), user => user_ctx(user),
            e => minijinja::Value::from_serialize(&v.detail.exception),
            p => minijinja::Value::from_serialize(&v.detail.payment),
            amount => labels::money(&money_text(v.detail.payment.amount_minor, &cur), &cur, lang),
            suggestions, one_click, resolutions => minijinja::Value::from_serialize(&v.detail.resolutions),
            audit => minijinja::Value::from_serialize(&v.detail.audit),
            actions => ACTIONS,
            // fixed names and booleans, serialized here: safe to embed in the script
            needs_target_json => serde_json::to_string(&needs_target).unwrap_or_default(),
            can_resolve => user.role >= Role::Clerk,
            is_supervisor => user.role >= Role::Supervisor,
            message, error, self_query => "",
            tz => state.app.config.daemon.time_zone.clone(),
        },
    );
    *resp.status_mut() = status;
    resp
}

#[derive(Debug, Deserialize)]
struct ResolveForm {
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    comment: String,
}

/// The action a form asks for.
fn action_of(f: &ResolveForm) -> Result<Action, String> {
    let t = f.target.trim().to_string();
    let need = |what: &str| -> Result<String, String> {
        if t.is_empty() {
            Err(format!("{what} is required"))
        } else {
            Ok(t.clone())
        }
    };
    Ok(match f.action.as_str() {
        "apply_bill" => Action::ApplyBill {
            bill_id: need("the bill")?,
        },
        "apply_account" => Action::ApplyAccount {
            account_no: need("the account")?,
        },
        "credit" => Action::Credit {
            account_no: need("the account")?,
        },
        "write_off" => Action::WriteOff {
            bill_id: need("the bill")?,
        },
        "refund" => Action::Refund {
            to: (!t.is_empty()).then_some(t.clone()),
        },
        "reject_duplicate" => Action::RejectDuplicate,
        "split" => {
            let spec = need("the split (BILL=AMOUNT,...)")?;
            let (parts, rest) = match spec.split_once(';') {
                Some((p, r)) => (p.to_string(), Some(r.trim().to_string())),
                None => (spec.clone(), None),
            };
            let rest_to_account = match rest {
                Some(r) => Some(
                    r.strip_prefix("rest=")
                        .ok_or_else(|| format!("`{r}`: expected rest=ACCOUNT"))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let parts = parts
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    let (bill, amount) = p
                        .split_once('=')
                        .ok_or_else(|| format!("`{p}`: expected BILL=AMOUNT"))?;
                    Ok(SplitPart {
                        bill_id: bill.trim().to_string(),
                        amount: amount
                            .trim()
                            .parse()
                            .map_err(|_| format!("`{amount}` is not an amount"))?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Action::Split {
                parts,
                rest_to_account,
            }
        }
        other => return Err(format!("unknown action `{other}`")),
    })
}

fn status_of(e: &WorkbenchError) -> StatusCode {
    match e {
        WorkbenchError::NotFound(_) => StatusCode::NOT_FOUND,
        WorkbenchError::Forbidden(_) => StatusCode::FORBIDDEN,
        WorkbenchError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WorkbenchError::Conflict(_) => StatusCode::CONFLICT,
        WorkbenchError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn resolve_form(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Path(id): Path<i64>,
    Query(lq): Query<LangQuery>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, lq.lang.as_deref());
    if let Some(m) = resolve::comment_too_long(&form.comment) {
        return detail_response(
            &state,
            &user,
            id,
            lang,
            None,
            Some(m),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let action = match action_of(&form) {
        Ok(a) => a,
        Err(m) => {
            return detail_response(
                &state,
                &user,
                id,
                lang,
                None,
                Some(m),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    match resolve::resolve(
        &state.app.store,
        &state.app.config,
        &actor(&user),
        id,
        &action,
        &form.comment,
    )
    .await
    {
        Ok(o) => Redirect::to(&format!(
            "/ui/exceptions/{id}?lang={lang}&message={}",
            if o.status == "proposed" {
                "proposed"
            } else {
                "done"
            }
        ))
        .into_response(),
        Err(e) => {
            if let WorkbenchError::Store(s) = &e {
                tracing::error!(error = %s, "resolution failed");
            }
            let status = status_of(&e);
            detail_response(&state, &user, id, lang, None, Some(e.to_string()), status).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct StepForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reference: String,
}

async fn step_form(
    State(state): State<Arc<DaemonState>>,
    user: Result<User, ApiError>,
    Path((id, step)): Path<(i64, String)>,
    Query(lq): Query<LangQuery>,
    Form(form): Form<StepForm>,
) -> Response {
    let user = match user_or_login(user) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let lang = language(&state, lq.lang.as_deref());
    let store = &state.app.store;
    let a = actor(&user);
    if let Some(m) = resolve::comment_too_long(&form.comment) {
        return (StatusCode::BAD_REQUEST, m).into_response();
    }
    let r = match step.as_str() {
        "approve" => resolve::approve(store, &a, id, &form.comment).await,
        "decline" => resolve::decline(store, &a, id, &form.comment).await,
        "reopen" => resolve::reopen(store, &a, id, &form.comment).await,
        "refund-paid" => resolve::refund_paid(store, &a, id, &form.reference, &form.comment).await,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // back to the exception the resolution belongs to
    let exception = {
        let Ok(mut conn) = store.pool().acquire().await else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        match q::resolution(&mut conn, id).await {
            Ok(Some(r)) => r.exception_id,
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
    };
    match r {
        Ok(_) => Redirect::to(&format!(
            "/ui/exceptions/{exception}?lang={lang}&message=done"
        ))
        .into_response(),
        Err(e) => {
            let status = status_of(&e);
            detail_response(
                &state,
                &user,
                exception,
                lang,
                None,
                Some(e.to_string()),
                status,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_both_languages_have_every_label() {
        for (name, _) in TEMPLATES {
            env().get_template(name).unwrap();
        }
        assert_eq!(labels("zh").len(), labels("en").len());
        for a in ACTIONS {
            assert!(labels("en").contains_key(format!("action_{a}").as_str()));
        }
    }

    #[test]
    fn a_split_form_reads_parts_and_the_rest() {
        let f = ResolveForm {
            action: "split".into(),
            target: "A-1=10.00, B-2=5.50; rest=4100000001".into(),
            comment: "x".into(),
        };
        let Action::Split {
            parts,
            rest_to_account,
        } = action_of(&f).unwrap()
        else {
            panic!("not a split")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].bill_id, "B-2");
        assert_eq!(parts[1].amount, "5.50".parse().unwrap());
        assert_eq!(rest_to_account.as_deref(), Some("4100000001"));
        let bad = ResolveForm {
            action: "apply_bill".into(),
            target: " ".into(),
            comment: "x".into(),
        };
        assert!(action_of(&bad).unwrap_err().contains("bill"));
    }
}
