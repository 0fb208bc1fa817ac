//! How each report reads for people: its title in the report's language, the clock it uses,
//! a summary read in five seconds, its charts, and its detail in sections with human column
//! names, amounts with thousands separators and the currency, and dates as people write
//! them; or, for a report without rows, why it is empty.
//!
//! Everything here is computed from the report's table (its columns and text cells, the same
//! as its CSV), so what a page shows can be checked against the CSV. The HTML page
//! ([`super::html`]) and the XLSX's about sheet ([`super::xlsx`]) are drawn from a [`View`].
//! A column a section does not name still shows, in a last section ("Other figures"), so a
//! column added to a report appears without touching this file.

use super::chart::{Bars, Line, Pareto, Series, Unit, PALETTE};
use super::labels::{self, is_zh};
use super::ReportKind;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// One figure of the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fact {
    /// What it belongs to (a currency), shown when the summary has more than one.
    pub group: String,
    /// Stable name, e.g. `received:ICBC:CNY` (in `data-key`).
    pub key: String,
    pub label: String,
    /// As people read it.
    pub text: String,
    /// The figure as in the CSV (in `data-value`).
    pub value: String,
}

/// A line of the summary: figures joined by words (`=`, `+`), and a mark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryLine {
    pub label: String,
    /// (joiner before the figure: "", "=", "+"), figure
    pub parts: Vec<(String, Fact)>,
    /// Some(true): it adds up; Some(false): it does not (with the gap in `note`).
    pub check: Option<bool>,
    pub note: Option<String>,
}

/// A table of the detail.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<usize>,
    /// Headings that differ from the columns' (e.g. `group` named by the section's dimension).
    pub headings: BTreeMap<String, String>,
}

impl Section {
    pub fn heading(&self, column: &str, lang: &str) -> String {
        self.headings
            .get(column)
            .cloned()
            .unwrap_or_else(|| labels::heading(column, lang))
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub kind: ReportKind,
    pub lang: String,
    pub title: String,
    /// "记账日 2026年11月12日" / "Booking day 12 Nov 2026"
    pub date_line: String,
    /// Which clock the report uses, in a sentence.
    pub clock: String,
    pub facts: Vec<Fact>,
    pub lines: Vec<SummaryLine>,
    pub charts: Vec<String>,
    pub sections: Vec<Section>,
    /// Why there is nothing to show, for a report without rows.
    pub empty: Option<String>,
    pub landscape: bool,
}

/// A report's table with cells by column name.
pub struct Table<'a> {
    pub columns: &'a [&'a str],
    pub rows: &'a [Vec<Option<String>>],
}

impl Table<'_> {
    pub fn get(&self, row: usize, column: &str) -> &str {
        self.columns
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.rows.get(row).and_then(|r| r.get(i)))
            .and_then(|c| c.as_deref())
            .unwrap_or("")
    }

    pub fn dec(&self, row: usize, column: &str) -> Decimal {
        self.get(row, column).parse().unwrap_or_default()
    }

    pub fn has(&self, column: &str) -> bool {
        self.columns.contains(&column)
    }

    fn indices(&self, f: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.rows.len()).filter(|i| f(*i)).collect()
    }
}

fn t(lang: &str, zh: &str, en: &str) -> String {
    if is_zh(lang) { zh } else { en }.to_string()
}

/// A report's title for people.
pub fn title(kind: ReportKind, lang: &str) -> String {
    let (zh, en) = match kind {
        ReportKind::DailySettlement => ("日结算报表", "Daily settlement"),
        ReportKind::SettlementLines => ("结算差异明细", "Settlement differences, line by line"),
        ReportKind::Exceptions => ("异常报表", "Exceptions"),
        ReportKind::Ageing => ("应收账款账龄分析", "Receivables ageing"),
        ReportKind::CollectionRate => ("电费回收率", "Collection rate"),
        ReportKind::KeyCustomers => ("重点客户", "Key customers"),
        ReportKind::PaymentBehaviour => ("客户缴费行为", "Payment behaviour"),
    };
    t(lang, zh, en)
}

/// The clock of a report, named: `booking day`, `as-of date` (README and the page's header).
pub fn clock_name(kind: ReportKind, lang: &str) -> String {
    match kind {
        ReportKind::DailySettlement | ReportKind::SettlementLines | ReportKind::Exceptions => {
            t(lang, "记账日", "Booking day")
        }
        _ => t(lang, "截至日", "As of"),
    }
}

fn clock_text(kind: ReportKind, date: NaiveDate, lang: &str) -> String {
    let d = labels::date(&date.to_string(), lang);
    let from =
        |days: i64| labels::date(&(date - chrono::Duration::days(days - 1)).to_string(), lang);
    match kind {
        ReportKind::DailySettlement | ReportKind::SettlementLines => t(
            lang,
            &format!("口径：记账日。本表汇总银行记账日为 {d} 的付款（银行文件通常次日到达，晚到的文件仍计入其记账日）；各笔款项的去向按出表时的记录。合作银行的实时对账结果按其营业日。"),
            &format!("Clock: booking day. This report sums the payments the banks booked on {d} (a bank's file normally arrives the next day; a late file still counts on its booking day); what became of each payment is as recorded when the report was made. Partner banks' real-time results are by their business day."),
        ),
        ReportKind::Exceptions => t(
            lang,
            &format!("口径：记账日，与日结算报表相同。“当日入账”指记账日为 {d} 的付款中进入异常队列的；“截至当日未处理”指记账日在 {d} 及以前、出表时仍未处理的异常，账龄自记账日起算到 {d}。"),
            &format!("Clock: booking day, as in the daily settlement. \u{201c}Booked that day\u{201d} are the payments booked on {d} that went to the exceptions queue; \u{201c}open through the day\u{201d} are the exceptions of payments booked on or before {d} still open when the report was made, aged from their booking day to {d}."),
        ),
        ReportKind::Ageing => t(
            lang,
            &format!("口径：截至日 {d} 日终。{d} 及以前开具的账单，减去记账日在 {d} 及以前的缴费（已扣除冲正）；违约金按催收政策计至 {d}。"),
            &format!("Clock: as of the end of {d}. The bills issued on or before {d}, less the payments booked on or before {d} (net of reversals); late fees by the dunning policy up to {d}."),
        ),
        ReportKind::CollectionRate => t(
            lang,
            &format!("口径：截至日 {d}。{} 至 {d} 开具的账单（按开具日），实收为记账日在 {d} 及以前的缴费；日趋势的回收率为截至各日的累计值。", from(super::collection::WINDOW_DAYS)),
            &format!("Clock: as of {d}. The bills issued from {} to {d} (by issue date), collected by payments booked on or before {d}; the daily trend's rate is the rate so far on each day.", from(super::collection::WINDOW_DAYS)),
        ),
        ReportKind::KeyCustomers | ReportKind::PaymentBehaviour => t(
            lang,
            &format!("口径：截至日 {d}。{} 至 {d}（365 天）开具的账单，记账日在 {d} 及以前的缴费，该期间记账的冲正。", from(super::customers::WINDOW_DAYS)),
            &format!("Clock: as of {d}. The bills issued from {} to {d} (365 days), the payments booked on or before {d}, the reversals booked in that time.", from(super::customers::WINDOW_DAYS)),
        ),
    }
}

fn empty_text(kind: ReportKind, date: NaiveDate, lang: &str) -> String {
    let d = labels::date(&date.to_string(), lang);
    let from =
        |days: i64| labels::date(&(date - chrono::Duration::days(days - 1)).to_string(), lang);
    match kind {
        ReportKind::DailySettlement => t(
            lang,
            &format!("没有记账日为 {d} 的付款：当日的银行文件尚未到达（通常次日到达），或各银行当日没有交易。"),
            &format!("No payments booked on {d}: the banks' files for that day have not arrived yet (they normally arrive the next day), or the banks had no transactions that day."),
        ),
        ReportKind::SettlementLines => t(
            lang,
            &format!("记账日为 {d} 的付款全部已入账，没有需要说明的差异：没有挂账、冲正、退款、剔除或核销。"),
            &format!("Every payment booked on {d} settled: none was held, reversed, refunded, rejected or written off."),
        ),
        ReportKind::Exceptions => t(
            lang,
            &format!("记账日为 {d} 的付款没有进入异常队列，记账日在 {d} 及以前的异常也都已处理。"),
            &format!("None of the payments booked on {d} went to the exceptions queue, and every exception of payments booked on or before {d} has been resolved."),
        ),
        ReportKind::Ageing => t(
            lang,
            &format!("截至 {d} 日终没有欠费：{d} 及以前开具的账单都已缴清，或尚未导入账单。"),
            &format!("Nothing was owed at the end of {d}: every bill issued by then was paid, or no bills have been imported."),
        ),
        ReportKind::CollectionRate => t(
            lang,
            &format!("{} 至 {d} 期间没有开具账单，回收率无从计算。", from(super::collection::WINDOW_DAYS)),
            &format!("No bills were issued from {} to {d}: there is no collection rate to compute.", from(super::collection::WINDOW_DAYS)),
        ),
        ReportKind::KeyCustomers => t(
            lang,
            &format!("{} 至 {d} 期间没有开具账单，无法确定重点客户。", from(super::customers::WINDOW_DAYS)),
            &format!("No bills were issued from {} to {d}: there are no key customers to name.", from(super::customers::WINDOW_DAYS)),
        ),
        ReportKind::PaymentBehaviour => t(
            lang,
            &format!("{} 至 {d} 期间没有开具账单，没有缴费行为可以分析。", from(super::customers::WINDOW_DAYS)),
            &format!("No bills were issued from {} to {d}: there is no payment behaviour to show.", from(super::customers::WINDOW_DAYS)),
        ),
    }
}

/// A cell of a row as people read it (codes in words, amounts in the row's currency, dates
/// written out; the `group` of a row by its `by`; channel lists and real-time results put
/// into words).
pub fn cell(table: &Table, row: usize, column: &str, lang: &str) -> String {
    let v = table.get(row, column);
    let currency = table.get(row, "currency");
    match column {
        "bank_id" if v == "ALL" => t(lang, "全部银行", "All banks"),
        "group" => match table.get(row, "by") {
            "class" => labels::word("class", v, lang),
            "channel" => labels::word("channel", v, lang),
            "day" => labels::date(v, lang),
            "all" => labels::word("by", "all", lang),
            "manager" if v == "(none)" => t(lang, "（无客户经理）", "(no manager)"),
            _ => v.to_string(),
        },
        "manager" if v.is_empty() => String::new(),
        "channels" => v
            .split("; ")
            .filter(|p| !p.is_empty())
            .map(|p| {
                // "counter 12 × 1234.00"
                let mut it = p.splitn(2, ' ');
                let ch = it.next().unwrap_or("");
                let rest = it.next().unwrap_or("");
                let (n, amount) = rest.split_once(" × ").unwrap_or((rest, ""));
                format!(
                    "{} {} × {}",
                    labels::word("channel", ch, lang),
                    labels::grouped(n),
                    labels::money(amount, currency, lang)
                )
            })
            .collect::<Vec<_>>()
            .join(if is_zh(lang) { "；" } else { "; " }),
        "realtime_vs_file" => {
            // "12 matched, 1 differences"
            let nums: Vec<&str> = v
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .collect();
            match nums.as_slice() {
                [m, d] if is_zh(lang) => format!("相符 {m} 笔，差异 {d} 笔"),
                [m, d] => format!("{m} matched, {d} differences"),
                _ => v.to_string(),
            }
        }
        _ => labels::display(column, v, currency, lang),
    }
}

fn money_unit(currency: &str, lang: &str) -> Unit {
    Unit::Money {
        currency: currency.to_string(),
        lang: lang.to_string(),
    }
}

fn fact(table: &Table, row: usize, column: &str, key: String, lang: &str) -> Fact {
    Fact {
        group: table.get(row, "currency").to_string(),
        key,
        label: labels::heading(column, lang),
        text: cell(table, row, column, lang),
        value: table.get(row, column).to_string(),
    }
}

/// The currencies of the rows, in alphabetical order.
fn currencies(table: &Table) -> Vec<String> {
    let mut out: Vec<String> = (0..table.rows.len())
        .map(|i| table.get(i, "currency").to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The view of a report.
pub fn view(
    kind: ReportKind,
    date: NaiveDate,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    lang: &str,
) -> View {
    let table = Table { columns, rows };
    let mut v = View {
        kind,
        lang: lang.to_string(),
        title: title(kind, lang),
        date_line: format!(
            "{} {}",
            clock_name(kind, lang),
            labels::date(&date.to_string(), lang)
        ),
        clock: clock_text(kind, date, lang),
        facts: vec![],
        lines: vec![],
        charts: vec![],
        sections: vec![],
        empty: rows.is_empty().then(|| empty_text(kind, date, lang)),
        landscape: matches!(
            kind,
            ReportKind::KeyCustomers | ReportKind::PaymentBehaviour
        ),
    };
    if rows.is_empty() {
        return v;
    }
    match kind {
        ReportKind::DailySettlement => settlement(&table, lang, &mut v),
        ReportKind::SettlementLines => lines(&table, lang, &mut v),
        ReportKind::Exceptions => exceptions(&table, lang, &mut v),
        ReportKind::Ageing => ageing(&table, lang, &mut v),
        ReportKind::CollectionRate => collection(&table, lang, &mut v),
        ReportKind::KeyCustomers => key_customers(&table, lang, &mut v),
        ReportKind::PaymentBehaviour => behaviour(&table, lang, &mut v),
    }
    // every column shows somewhere: the ones no section names go to a last one
    let keys: &[&str] = match kind {
        ReportKind::DailySettlement => &["bank_id", "currency"],
        ReportKind::SettlementLines => &["bank_id", "bank_ref"],
        ReportKind::Exceptions => &["reason", "currency"],
        ReportKind::Ageing | ReportKind::CollectionRate => &["by", "group", "currency"],
        _ => &["account_no", "name"],
    };
    let shown: Vec<&str> = v
        .sections
        .iter()
        .flat_map(|s| s.columns.iter().map(String::as_str))
        .collect();
    // the date, the dimension and the window are in the page's header and section titles
    let implied = ["date", "by", "window_from"];
    let rest: Vec<String> = columns
        .iter()
        .filter(|c| !implied.contains(c) && !shown.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !rest.is_empty() {
        v.sections.push(Section {
            title: t(lang, "其他数据", "Other figures"),
            columns: keys
                .iter()
                .filter(|k| table.has(k))
                .map(|k| k.to_string())
                .chain(rest)
                .collect(),
            rows: (0..rows.len()).collect(),
            headings: BTreeMap::new(),
        });
    }
    v
}

fn cols(list: &[&str], table: &Table) -> Vec<String> {
    list.iter()
        .filter(|c| table.has(c))
        .map(|c| c.to_string())
        .collect()
}

/// The daily settlement: received = applied + credit + held + refunded + written off, per
/// bank and currency; where each bank's money went; the files' check; the rest.
fn settlement(table: &Table, lang: &str, v: &mut View) {
    const WENT: [&str; 5] = [
        "applied",
        "credit",
        "held_in_exceptions",
        "refunded",
        "written_off",
    ];
    for i in 0..table.rows.len() {
        let bank = table.get(i, "bank_id");
        let ccy = table.get(i, "currency");
        let key = |c: &str| format!("{c}:{bank}:{ccy}");
        let mut parts = vec![(
            String::new(),
            fact(table, i, "received", key("received"), lang),
        )];
        let mut sum = Decimal::ZERO;
        for (k, c) in WENT.iter().enumerate() {
            sum += table.dec(i, c);
            parts.push((
                if k == 0 { "=" } else { "+" }.to_string(),
                fact(table, i, c, key(c), lang),
            ));
        }
        let gap = table.dec(i, "received") - sum;
        v.lines.push(SummaryLine {
            label: format!(
                "{} · {} · {} {}",
                cell(table, i, "bank_id", lang),
                ccy,
                labels::grouped(table.get(i, "received_count")),
                if table.get(i, "received_count") == "1" {
                    t(lang, "笔", "payment")
                } else {
                    t(lang, "笔", "payments")
                }
            ),
            parts,
            check: Some(gap.is_zero()),
            note: (!gap.is_zero()).then(|| {
                format!(
                    "{} {}",
                    t(lang, "不平，差", "does not add up by"),
                    labels::money(&gap.to_string(), ccy, lang)
                )
            }),
        });
    }
    for ccy in currencies(table) {
        if let Some(i) = (0..table.rows.len())
            .find(|i| table.get(*i, "bank_id") == "ALL" && table.get(*i, "currency") == ccy)
        {
            for c in [
                "read_credits",
                "declared_credits",
                "difference",
                "rejected_duplicates",
                "reversed",
                "debits",
            ] {
                if table.has(c) && !table.get(i, c).is_empty() {
                    v.facts
                        .push(fact(table, i, c, format!("{c}:ALL:{ccy}"), lang));
                }
            }
        }
        let banks =
            table.indices(|i| table.get(i, "bank_id") != "ALL" && table.get(i, "currency") == ccy);
        let series: Vec<Series> = WENT
            .iter()
            .enumerate()
            .map(|(k, c)| Series {
                key: c.to_string(),
                name: labels::heading(c, lang),
                color: PALETTE[[0, 1, 2, 3, 4][k]].to_string(),
                values: banks.iter().map(|i| table.dec(*i, c)).collect(),
            })
            .collect();
        v.charts.push(
            Bars {
                title: format!(
                    "{} ({ccy})",
                    t(lang, "各银行收款去向", "Where each bank's money went")
                ),
                categories: banks
                    .iter()
                    .map(|i| table.get(*i, "bank_id").to_string())
                    .collect(),
                series,
                horizontal: true,
                unit: money_unit(&ccy, lang),
                end_labels: Some(
                    banks
                        .iter()
                        .map(|i| {
                            format!(
                                "{} {}",
                                t(lang, "收款", "received"),
                                cell(table, *i, "received", lang)
                            )
                        })
                        .collect(),
                ),
                axis: t(lang, "金额", "amount"),
            }
            .svg(),
        );
    }
    let all = (0..table.rows.len()).collect::<Vec<_>>();
    v.sections = vec![
        Section {
            title: t(lang, "收款去向", "Where the money received went"),
            columns: cols(
                &[
                    "bank_id",
                    "currency",
                    "received_count",
                    "received",
                    "applied",
                    "credit",
                    "held_in_exceptions",
                    "refunded",
                    "written_off",
                ],
                table,
            ),
            rows: all.clone(),
            headings: BTreeMap::new(),
        },
        Section {
            title: t(lang, "其他款项", "Other lines of the day"),
            columns: cols(
                &[
                    "bank_id",
                    "currency",
                    "rejected_duplicates",
                    "reversal_count",
                    "reversed",
                    "debit_count",
                    "debits",
                ],
                table,
            ),
            rows: all.clone(),
            headings: BTreeMap::new(),
        },
        Section {
            title: t(lang, "对账文件核对", "The banks' files"),
            columns: cols(
                &[
                    "bank_id",
                    "currency",
                    "files",
                    "read_credits",
                    "declared_credits",
                    "difference",
                ],
                table,
            ),
            rows: all.clone(),
            headings: BTreeMap::new(),
        },
        Section {
            title: t(lang, "渠道与合作银行", "Channels and partner banks"),
            columns: cols(
                &[
                    "bank_id",
                    "currency",
                    "channels",
                    "realtime_vs_file",
                    "expected_transfer",
                    "settlement",
                ],
                table,
            ),
            rows: all,
            headings: BTreeMap::new(),
        },
    ];
}

fn lines(table: &Table, lang: &str, v: &mut View) {
    let mut by_status: BTreeMap<(String, String), (i64, Decimal)> = BTreeMap::new();
    for i in 0..table.rows.len() {
        let e = by_status
            .entry((
                table.get(i, "status").to_string(),
                table.get(i, "currency").to_string(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += table.dec(i, "amount");
    }
    v.facts.push(Fact {
        group: String::new(),
        key: "lines".into(),
        label: t(lang, "差异笔数", "Lines"),
        text: labels::grouped(&table.rows.len().to_string()),
        value: table.rows.len().to_string(),
    });
    for ((status, ccy), (n, sum)) in by_status {
        v.facts.push(Fact {
            group: ccy.to_string(),
            key: format!("status:{status}:{ccy}"),
            label: format!(
                "{} ({} {})",
                labels::word("status", &status, lang),
                labels::grouped(&n.to_string()),
                t(lang, "笔", "lines")
            ),
            text: labels::money(&sum.to_string(), &ccy, lang),
            value: sum.to_string(),
        });
    }
    v.sections = vec![Section {
        title: t(lang, "明细", "The lines"),
        columns: cols(
            &[
                "bank_id",
                "bank_ref",
                "amount",
                "status",
                "exception_reason",
                "detail",
            ],
            table,
        ),
        rows: (0..table.rows.len()).collect(),
        headings: BTreeMap::new(),
    }];
}

fn exceptions(table: &Table, lang: &str, v: &mut View) {
    for ccy in currencies(table) {
        if let Some(i) = (0..table.rows.len())
            .find(|i| table.get(*i, "reason") == "all" && table.get(*i, "currency") == ccy)
        {
            for c in [
                "booked_count",
                "booked_amount",
                "open_received_amount",
                "queue_count",
                "queue_amount",
                "queue_over_30_days",
                "escalated_count",
            ] {
                if table.has(c) {
                    v.facts
                        .push(fact(table, i, c, format!("{c}:all:{ccy}"), lang));
                }
            }
        }
    }
    // counts by reason over all currencies
    let mut reasons: Vec<String> = Vec::new();
    for i in 0..table.rows.len() {
        let r = table.get(i, "reason").to_string();
        if r != "all" && !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    let sum_of = |reason: &str, column: &str| -> Decimal {
        (0..table.rows.len())
            .filter(|i| table.get(*i, "reason") == reason)
            .map(|i| table.dec(i, column))
            .sum()
    };
    let count = Unit::Count {
        lang: lang.to_string(),
    };
    let older: Vec<Decimal> = reasons
        .iter()
        .map(|r| sum_of(r, "queue_count") - sum_of(r, "open_count"))
        .collect();
    v.charts.push(
        Bars {
            title: t(lang, "异常笔数（按原因）", "Exceptions by reason"),
            categories: reasons
                .iter()
                .map(|r| labels::word("reason", r, lang))
                .collect(),
            series: vec![
                Series {
                    key: "booked_open".into(),
                    name: t(lang, "当日入账、仍未处理", "Booked that day, still open"),
                    color: PALETTE[2].into(),
                    values: reasons.iter().map(|r| sum_of(r, "open_count")).collect(),
                },
                Series {
                    key: "earlier_open".into(),
                    name: t(lang, "更早入账、仍未处理", "Booked earlier, still open"),
                    color: PALETTE[5].into(),
                    values: older,
                },
                Series {
                    key: "booked_resolved".into(),
                    name: t(lang, "当日入账、已处理", "Booked that day, resolved"),
                    color: PALETTE[0].into(),
                    values: reasons
                        .iter()
                        .map(|r| sum_of(r, "resolved_count"))
                        .collect(),
                },
            ],
            horizontal: true,
            unit: count.clone(),
            end_labels: None,
            axis: t(lang, "笔数", "count"),
        }
        .svg(),
    );
    const AGES: [&str; 4] = [
        "queue_0_1_days",
        "queue_2_7_days",
        "queue_8_30_days",
        "queue_over_30_days",
    ];
    v.charts.push(
        Bars {
            title: t(
                lang,
                "截至当日未处理异常的账龄（按原因）",
                "Open exceptions by age and reason",
            ),
            categories: AGES.iter().map(|a| labels::heading(a, lang)).collect(),
            series: reasons
                .iter()
                .enumerate()
                .map(|(k, r)| Series {
                    key: r.clone(),
                    name: labels::word("reason", r, lang),
                    color: PALETTE[k % PALETTE.len()].into(),
                    values: AGES.iter().map(|a| sum_of(r, a)).collect(),
                })
                .collect(),
            horizontal: false,
            unit: count,
            end_labels: None,
            axis: t(lang, "笔数", "count"),
        }
        .svg(),
    );
    let all = (0..table.rows.len()).collect::<Vec<_>>();
    v.sections = vec![
        Section {
            title: t(lang, "当日入账的异常", "Exceptions of the day's payments"),
            columns: cols(
                &[
                    "reason",
                    "currency",
                    "booked_count",
                    "booked_amount",
                    "open_count",
                    "open_amount",
                    "open_received_amount",
                    "resolved_count",
                ],
                table,
            ),
            rows: all.clone(),
            headings: BTreeMap::new(),
        },
        Section {
            title: t(
                lang,
                "截至当日未处理的异常（账龄）",
                "Open through the day, by age",
            ),
            columns: cols(
                &[
                    "reason",
                    "currency",
                    "queue_count",
                    "queue_amount",
                    "queue_0_1_days",
                    "queue_2_7_days",
                    "queue_8_30_days",
                    "queue_over_30_days",
                    "escalated_count",
                    "escalated_amount",
                ],
                table,
            ),
            rows: all,
            headings: BTreeMap::new(),
        },
    ];
}

fn ageing(table: &Table, lang: &str, v: &mut View) {
    const BUCKETS: [&str; 5] = [
        "not_yet_due",
        "days_1_30",
        "days_31_60",
        "days_61_90",
        "over_90",
    ];
    for ccy in currencies(table) {
        if let Some(i) = (0..table.rows.len())
            .find(|i| table.get(*i, "by") == "all" && table.get(*i, "currency") == ccy)
        {
            v.facts
                .push(fact(table, i, "total", format!("total:all:{ccy}"), lang));
            let overdue = table.dec(i, "total") - table.dec(i, "not_yet_due");
            v.facts.push(Fact {
                group: ccy.to_string(),
                key: format!("overdue:all:{ccy}"),
                label: t(lang, "已逾期", "Overdue"),
                text: labels::money(&overdue.to_string(), &ccy, lang),
                value: overdue.to_string(),
            });
            for c in ["over_90", "late_fees", "bills"] {
                v.facts
                    .push(fact(table, i, c, format!("{c}:all:{ccy}"), lang));
            }
        }
        let classes =
            table.indices(|i| table.get(i, "by") == "class" && table.get(i, "currency") == ccy);
        v.charts.push(
            Bars {
                title: format!(
                    "{} ({ccy})",
                    t(lang, "各用电类别账龄", "Ageing by customer class")
                ),
                categories: classes
                    .iter()
                    .map(|i| cell(table, *i, "group", lang))
                    .collect(),
                series: BUCKETS
                    .iter()
                    .enumerate()
                    .map(|(k, b)| Series {
                        key: b.to_string(),
                        name: labels::heading(b, lang),
                        color: ["#2f855a", "#d69e2e", "#dd6b20", "#c53030", "#742a2a"][k].into(),
                        values: classes.iter().map(|i| table.dec(*i, b)).collect(),
                    })
                    .collect(),
                horizontal: false,
                unit: money_unit(&ccy, lang),
                end_labels: None,
                axis: t(lang, "金额", "amount"),
            }
            .svg(),
        );
    }
    let columns = cols(
        &[
            "group",
            "currency",
            "bills",
            "not_yet_due",
            "days_1_30",
            "days_31_60",
            "days_61_90",
            "over_90",
            "total",
            "late_fees",
        ],
        table,
    );
    v.sections = [
        ("class", "按用电类别", "By customer class"),
        ("manager", "按客户经理", "By customer manager"),
        ("all", "合计", "In all"),
    ]
    .iter()
    .map(|(by, zh, en)| Section {
        title: t(lang, zh, en),
        columns: columns.clone(),
        rows: table.indices(|i| table.get(i, "by") == *by),
        headings: [(
            "group".to_string(),
            match *by {
                "day" => t(lang, "日期", "Day"),
                "all" => labels::heading("group", lang),
                b => {
                    let w = labels::word("by", b, lang);
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or(w)
                }
            },
        )]
        .into_iter()
        .collect(),
    })
    .filter(|s| !s.rows.is_empty())
    .collect();
}

fn collection(table: &Table, lang: &str, v: &mut View) {
    for ccy in currencies(table) {
        if let Some(i) = (0..table.rows.len())
            .find(|i| table.get(*i, "by") == "all" && table.get(*i, "currency") == ccy)
        {
            for c in [
                "billed",
                "collected",
                "collection_rate_pct",
                "avg_days_to_payment",
            ] {
                v.facts
                    .push(fact(table, i, c, format!("{c}:all:{ccy}"), lang));
            }
        }
        let days =
            table.indices(|i| table.get(i, "by") == "day" && table.get(i, "currency") == ccy);
        // every day of the window, a point where the report has a row
        let bounds = days.first().and_then(|i| {
            Some((
                NaiveDate::parse_from_str(table.get(*i, "window_from"), "%Y-%m-%d").ok()?,
                NaiveDate::parse_from_str(table.get(*i, "date"), "%Y-%m-%d").ok()?,
            ))
        });
        let Some((first, last)) = bounds else {
            continue;
        };
        let xs: Vec<String> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| d.to_string())
            .collect();
        let ys = xs
            .iter()
            .map(|x| {
                days.iter()
                    .find(|i| table.get(**i, "group") == x)
                    .and_then(|i| table.get(*i, "collection_rate_pct").parse().ok())
            })
            .collect();
        v.charts.push(
            Line {
                title: format!(
                    "{} ({ccy})",
                    t(
                        lang,
                        "回收率日趋势（累计）",
                        "Collection rate, day by day (so far)"
                    )
                ),
                xs,
                ys,
                step: true,
                unit: Unit::Percent,
                name: labels::heading("collection_rate_pct", lang),
                color: PALETTE[1].into(),
                y_min_top: Decimal::from(100),
                axis: t(lang, "账单开具日 / 缴费记账日", "issue day / booking day"),
            }
            .svg(),
        );
    }
    let money_cols = cols(
        &[
            "group",
            "currency",
            "billed",
            "collected",
            "collection_rate_pct",
            "avg_days_to_payment",
        ],
        table,
    );
    v.sections = [
        ("all", "合计", "In all"),
        ("class", "按用电类别", "By customer class"),
        ("manager", "按客户经理", "By customer manager"),
        ("bank", "按缴费银行（实收）", "By paying bank (collected)"),
        (
            "channel",
            "按缴费渠道（实收）",
            "By payment channel (collected)",
        ),
        ("day", "日趋势", "Day by day"),
    ]
    .iter()
    .map(|(by, zh, en)| Section {
        title: t(lang, zh, en),
        columns: money_cols.clone(),
        rows: table.indices(|i| table.get(i, "by") == *by),
        headings: [(
            "group".to_string(),
            match *by {
                "day" => t(lang, "日期", "Day"),
                "all" => labels::heading("group", lang),
                b => {
                    let w = labels::word("by", b, lang);
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or(w)
                }
            },
        )]
        .into_iter()
        .collect(),
    })
    .filter(|s| !s.rows.is_empty())
    .collect();
}

fn key_customers(table: &Table, lang: &str, v: &mut View) {
    for ccy in currencies(table) {
        let mine = table.indices(|i| table.get(i, "currency") == ccy);
        let billed: Decimal = mine.iter().map(|i| table.dec(*i, "billed")).sum();
        let owed: Decimal = mine.iter().map(|i| table.dec(*i, "outstanding")).sum();
        let share = mine
            .last()
            .map(|i| table.get(*i, "cumulative_pct").to_string())
            .unwrap_or_default();
        let high = mine
            .iter()
            .filter(|i| table.get(**i, "risk") == "high")
            .count();
        v.facts.extend([
            Fact {
                group: ccy.to_string(),
                key: format!("customers:{ccy}"),
                label: t(lang, "重点客户数", "Key customers"),
                text: labels::grouped(&mine.len().to_string()),
                value: mine.len().to_string(),
            },
            Fact {
                group: ccy.to_string(),
                key: format!("cumulative_pct:{ccy}"),
                label: t(lang, "占全部应收", "Share of all billing"),
                text: format!("{share}%"),
                value: share,
            },
            Fact {
                group: ccy.to_string(),
                key: format!("billed:{ccy}"),
                label: labels::heading("billed", lang),
                text: labels::money(&billed.to_string(), &ccy, lang),
                value: billed.to_string(),
            },
            Fact {
                group: ccy.to_string(),
                key: format!("outstanding:{ccy}"),
                label: labels::heading("outstanding", lang),
                text: labels::money(&owed.to_string(), &ccy, lang),
                value: owed.to_string(),
            },
            Fact {
                group: ccy.to_string(),
                key: format!("high_risk:{ccy}"),
                label: t(lang, "高风险客户", "High risk"),
                text: high.to_string(),
                value: high.to_string(),
            },
        ]);
        v.charts.push(
            Pareto {
                title: format!(
                    "{} ({ccy})",
                    t(lang, "重点客户帕累托图", "Pareto of key customers")
                ),
                items: mine
                    .iter()
                    .map(|i| {
                        (
                            table.get(*i, "account_no").to_string(),
                            table.dec(*i, "billed"),
                            table.dec(*i, "cumulative_pct"),
                        )
                    })
                    .collect(),
                unit: money_unit(&ccy, lang),
                bar_name: labels::heading("billed", lang),
                line_name: labels::heading("cumulative_pct", lang),
                guide_name: t(lang, "80% 线", "the 80% line"),
                axis: t(
                    lang,
                    "客户（按应收金额排序）",
                    "customers, largest billing first",
                ),
            }
            .svg(),
        );
    }
    v.sections = vec![Section {
        title: t(lang, "明细", "The customers"),
        columns: cols(
            &[
                "rank",
                "account_no",
                "name",
                "class",
                "manager",
                "currency",
                "billed",
                "share_pct",
                "cumulative_pct",
                "outstanding",
                "on_time_rate_pct",
                "risk",
            ],
            table,
        ),
        rows: (0..table.rows.len()).collect(),
        headings: BTreeMap::new(),
    }];
}

fn behaviour(table: &Table, lang: &str, v: &mut View) {
    let n = table.rows.len();
    let bills: Decimal = (0..n).map(|i| table.dec(i, "bills")).sum();
    let on_time: Decimal = (0..n).map(|i| table.dec(i, "on_time")).sum();
    let rate = if bills > Decimal::ZERO {
        format!("{:.2}", (on_time * Decimal::from(100) / bills).round_dp(2))
    } else {
        String::new()
    };
    v.facts.push(Fact {
        group: String::new(),
        key: "customers".into(),
        label: t(lang, "客户数", "Customers"),
        text: labels::grouped(&n.to_string()),
        value: n.to_string(),
    });
    v.facts.push(Fact {
        group: String::new(),
        key: "on_time_rate_pct".into(),
        label: labels::heading("on_time_rate_pct", lang),
        text: if rate.is_empty() {
            rate.clone()
        } else {
            format!("{rate}%")
        },
        value: rate,
    });
    let risks = ["high", "medium", "low"];
    let counts: Vec<Decimal> = risks
        .iter()
        .map(|r| Decimal::from((0..n).filter(|i| table.get(*i, "risk") == *r).count() as i64))
        .collect();
    for (r, c) in risks.iter().zip(&counts) {
        v.facts.push(Fact {
            group: String::new(),
            key: format!("risk:{r}"),
            label: format!(
                "{} {}",
                labels::heading("risk", lang),
                labels::word("risk", r, lang)
            ),
            text: c.to_string(),
            value: c.to_string(),
        });
    }
    v.charts.push(
        Bars {
            title: t(lang, "客户风险分布", "Customers by risk"),
            categories: risks
                .iter()
                .map(|r| labels::word("risk", r, lang))
                .collect(),
            series: vec![Series {
                key: "customers".into(),
                name: t(lang, "客户数", "customers"),
                color: PALETTE[1].into(),
                values: counts,
            }],
            horizontal: false,
            unit: Unit::Count {
                lang: lang.to_string(),
            },
            end_labels: None,
            axis: t(lang, "客户数", "customers"),
        }
        .svg(),
    );
    v.sections = vec![Section {
        title: t(lang, "明细", "The customers"),
        columns: cols(
            &[
                "account_no",
                "name",
                "bills",
                "on_time",
                "late",
                "on_time_rate_pct",
                "avg_days_late",
                "reversed_payments",
                "risk",
            ],
            table,
        ),
        rows: (0..n).collect(),
        headings: BTreeMap::new(),
    }];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn the_settlement_summary_adds_up_per_bank_and_every_column_shows() {
        let cols = super::super::settlement::COLUMNS;
        let mut row = vec![None; cols.len()];
        let set = |row: &mut Vec<Option<String>>, c: &str, v: &str| {
            row[cols.iter().position(|x| *x == c).unwrap()] = s(v);
        };
        set(&mut row, "bank_id", "ICBC");
        set(&mut row, "currency", "CNY");
        set(&mut row, "received_count", "3");
        set(&mut row, "received", "1000.00");
        set(&mut row, "applied", "600.00");
        set(&mut row, "credit", "100.00");
        set(&mut row, "held_in_exceptions", "300.00");
        set(&mut row, "refunded", "0.00");
        set(&mut row, "written_off", "0.00");
        let mut all = row.clone();
        all[1] = s("ALL");
        let mut extra_cols: Vec<&str> = cols.to_vec();
        extra_cols.push("late_fees_collected");
        let rows = [row, all];
        let rows2: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.push(s("5.00"));
                r
            })
            .collect();
        let day = NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
        let v = view(ReportKind::DailySettlement, day, &extra_cols, &rows2, "zh");
        assert_eq!(v.title, "日结算报表");
        assert_eq!(v.date_line, "记账日 2026年11月12日");
        assert_eq!(v.lines.len(), 2);
        assert_eq!(v.lines[0].check, Some(true));
        assert_eq!(v.lines[0].parts[0].1.text, "¥1,000.00");
        assert_eq!(v.lines[1].label, "全部银行 · CNY · 3 笔");
        // a column no section names is still shown
        let last = v.sections.last().unwrap();
        assert!(
            last.columns.contains(&"late_fees_collected".to_string()),
            "{last:?}"
        );
        assert!(v.charts[0]
            .contains("data-category=\"ICBC\" data-series=\"applied\" data-value=\"600.00\""));
        let empty = view(ReportKind::DailySettlement, day, cols, &[], "en");
        assert_eq!(empty.title, "Daily settlement");
        assert!(empty
            .empty
            .unwrap()
            .starts_with("No payments booked on 12 Nov 2026"));
    }
}
