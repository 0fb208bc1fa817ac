//! Every column the reports and exports write, in one place: its heading for people (Chinese
//! and English) and its kind (text, code, date, money, count, percentage, days). The kind
//! decides how a cell is shown (HTML, XLSX) and how a CSV cell is made safe for spreadsheets
//! ([`super::excel_safe_in`]): text is always neutralized, numbers are left numbers.
//!
//! Also here: the words for the codes the reports and the workbench show (payment statuses,
//! exception reasons, directions, risk, customer classes, channels, ...), the exception
//! details in Chinese, and amounts, counts and dates written as people write them.
//!
//! A new column is added to [`COLUMNS`] (a unit test fails on a report or export column that
//! is not there).

use rust_decimal::Decimal;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (names, references, details): neutralized in CSV.
    Text,
    /// A code from a fixed set (status, reason, ...): shown in the page's language.
    Code,
    /// A date `YYYY-MM-DD` (or a timestamp).
    Date,
    /// An amount in the row's currency.
    Money,
    /// A whole number.
    Count,
    /// A percentage (two decimals).
    Percent,
    /// A number of days (one decimal).
    Days,
}

impl Kind {
    /// Numbers in a spreadsheet: money, counts, percentages, days.
    pub fn is_number(self) -> bool {
        matches!(self, Kind::Money | Kind::Count | Kind::Percent | Kind::Days)
    }
}

use Kind::*;

/// (column, Chinese heading, English heading, kind).
pub const COLUMNS: &[(&str, &str, &str, Kind)] = &[
    // the daily settlement
    ("date", "日期", "Date", Date),
    ("bank_id", "银行", "Bank", Text),
    ("currency", "币种", "Currency", Text),
    ("received_count", "收款笔数", "Payments received", Count),
    ("received", "收款金额", "Received", Money),
    ("applied", "已销账", "Applied to bills", Money),
    ("credit", "预存", "Held as credit", Money),
    (
        "held_in_exceptions",
        "异常挂账",
        "Held in exceptions",
        Money,
    ),
    ("refunded", "退款", "Refunded", Money),
    ("written_off", "核销差额", "Written off", Money),
    (
        "rejected_duplicates",
        "重复剔除",
        "Rejected duplicates",
        Money,
    ),
    ("reversal_count", "冲正笔数", "Reversals", Count),
    ("reversed", "冲正金额", "Reversed", Money),
    ("debit_count", "借记笔数", "Debits", Count),
    ("debits", "借记金额", "Debited", Money),
    ("files", "文件数", "Files", Count),
    (
        "declared_credits",
        "对账文件声明贷方合计",
        "Credits declared by the files",
        Money,
    ),
    (
        "read_credits",
        "实际读取贷方合计",
        "Credits read from the files",
        Money,
    ),
    (
        "difference",
        "差额(读取-声明)",
        "Difference (read - declared)",
        Money,
    ),
    ("channels", "渠道", "Channels", Text),
    ("findings", "文件校验问题", "File check findings", Text),
    (
        "realtime_vs_file",
        "实时与对账文件",
        "Real-time vs file",
        Text,
    ),
    (
        "expected_transfer",
        "应划转金额",
        "Transfer expected",
        Money,
    ),
    ("settlement", "清算状态", "Settlement", Code),
    // the lines behind it
    ("bank_ref", "银行流水号", "Bank reference", Text),
    ("amount", "金额", "Amount", Money),
    ("status", "状态", "Status", Code),
    ("exception_reason", "异常原因", "Exception reason", Code),
    ("detail", "说明", "Detail", Text),
    // exceptions
    ("reason", "原因", "Reason", Code),
    ("booked_count", "当日入账异常笔数", "Booked that day", Count),
    (
        "booked_amount",
        "当日入账异常金额",
        "Amount booked that day",
        Money,
    ),
    ("open_count", "仍未处理笔数", "Still open", Count),
    ("open_amount", "仍未处理金额", "Amount still open", Money),
    (
        "open_received_amount",
        "其中收款挂账",
        "Of it, money received held",
        Money,
    ),
    ("resolved_count", "已处理笔数", "Resolved", Count),
    (
        "queue_count",
        "截至当日未处理笔数",
        "Open through the day",
        Count,
    ),
    (
        "queue_amount",
        "截至当日未处理金额",
        "Amount open through the day",
        Money,
    ),
    ("queue_0_1_days", "0-1天", "0-1 days", Count),
    ("queue_2_7_days", "2-7天", "2-7 days", Count),
    ("queue_8_30_days", "8-30天", "8-30 days", Count),
    ("queue_over_30_days", "30天以上", "Over 30 days", Count),
    ("escalated_count", "已升级笔数", "Escalated", Count),
    ("escalated_amount", "已升级金额", "Amount escalated", Money),
    // ageing
    ("by", "维度", "By", Code),
    ("group", "分组", "Group", Text),
    ("bills", "账单数", "Bills", Count),
    ("not_yet_due", "未到期", "Not yet due", Money),
    ("days_1_30", "逾期1-30天", "1-30 days overdue", Money),
    ("days_31_60", "逾期31-60天", "31-60 days overdue", Money),
    ("days_61_90", "逾期61-90天", "61-90 days overdue", Money),
    ("over_90", "逾期90天以上", "Over 90 days overdue", Money),
    ("total", "合计", "Total", Money),
    ("late_fees", "违约金", "Late fees", Money),
    (
        "late_fees_owed",
        "已计未收违约金",
        "Late fees charged, unpaid",
        Money,
    ),
    (
        "late_fees_charged",
        "违约金应收",
        "Late fees charged",
        Money,
    ),
    (
        "late_fees_collected",
        "违约金实收",
        "Late fees collected",
        Money,
    ),
    ("late_fees_waived", "违约金减免", "Late fees waived", Money),
    (
        "late_fees_outstanding",
        "违约金欠收",
        "Late fees outstanding",
        Money,
    ),
    // collection rate
    ("window_from", "统计起始日", "Window from", Date),
    ("billed", "应收金额", "Billed", Money),
    ("collected", "实收金额", "Collected", Money),
    (
        "collection_rate_pct",
        "回收率(%)",
        "Collection rate (%)",
        Percent,
    ),
    (
        "avg_days_to_payment",
        "平均缴费天数",
        "Average days to payment",
        Days,
    ),
    // customers
    ("rank", "排名", "Rank", Count),
    ("account_no", "户号", "Account", Text),
    ("name", "户名", "Name", Text),
    ("class", "用电类别", "Customer class", Code),
    ("manager", "客户经理", "Customer manager", Text),
    ("share_pct", "占比(%)", "Share (%)", Percent),
    ("cumulative_pct", "累计占比(%)", "Cumulative (%)", Percent),
    ("outstanding", "欠费", "Outstanding", Money),
    ("on_time", "按期缴费", "On time", Count),
    ("late", "逾期缴费", "Late", Count),
    ("on_time_rate_pct", "按期率(%)", "On-time rate (%)", Percent),
    ("avg_days_late", "平均逾期天数", "Average days late", Days),
    ("reversed_payments", "冲正次数", "Payments reversed", Count),
    ("risk", "风险", "Risk", Code),
    // exports
    ("end_to_end_id", "端到端编号", "End-to-end id", Text),
    ("held", "挂账", "Held", Money),
    ("direction", "方向", "Direction", Code),
    ("reversal", "冲正", "Reversal", Text),
    ("payer_name", "付款人", "Payer", Text),
    ("reference", "参考号", "Reference", Text),
    ("remittance", "附言", "Remittance", Text),
    ("booking_date", "记账日", "Booking date", Date),
    ("value_date", "起息日", "Value date", Date),
    ("exception_detail", "异常说明", "Exception detail", Text),
    (
        "reverses_payment_id",
        "冲正的付款",
        "Reverses payment",
        Text,
    ),
    (
        "reversed_by_payment_id",
        "被冲正于",
        "Reversed by payment",
        Text,
    ),
    ("payment_id", "付款编号", "Payment id", Text),
    ("file_id", "文件编号", "File id", Text),
    ("file_name", "文件名", "File", Text),
    ("channel", "渠道", "Channel", Code),
    ("bill_id", "账单号", "Bill", Text),
    ("rule", "规则", "Rule", Code),
    ("allocation_id", "分配编号", "Allocation id", Text),
    ("allocated_at", "分配时间", "Allocated at", Date),
    ("part", "销账部分", "Part", Code),
    // the late-fee ledger's export
    ("late_fee_id", "违约金记录编号", "Late fee id", Text),
    ("by_payment_id", "冲正付款", "Undone by payment", Text),
    ("from_on", "起算日", "From", Date),
    ("to_on", "截止日", "To", Date),
    ("days", "天数", "Days", Count),
    ("rate", "日费率", "Daily rate", Text),
    ("base", "计费本金", "Base", Money),
    ("computed", "按费率计算", "Computed", Money),
    ("minimum", "最低收取", "Minimum", Money),
    ("exception_id", "异常编号", "Exception id", Text),
    ("created_at", "创建时间", "Created at", Date),
    ("resolved_at", "处理时间", "Resolved at", Date),
    ("escalated_at", "升级时间", "Escalated at", Date),
    // audit, users, partners, banks, dunning, notices
    ("audit_id", "审计编号", "Audit id", Text),
    ("at", "时间", "At", Date),
    ("actor", "操作人", "By", Text),
    ("action", "操作", "Action", Code),
    ("resolution_id", "处理编号", "Resolution id", Text),
    ("bill_ids", "账单", "Bills", Text),
    ("comment", "说明", "Comment", Text),
    ("before", "之前", "Before", Text),
    ("after", "之后", "After", Text),
    ("role", "角色", "Role", Code),
    ("created_by", "创建人", "Created by", Text),
    ("revoked_at", "吊销时间", "Revoked at", Date),
    ("active_tokens", "有效令牌", "Active tokens", Count),
    ("last_used_at", "最近使用", "Last used", Date),
    ("id", "编号", "Id", Text),
    ("bank", "银行", "Bank", Text),
    ("kind", "类型", "Kind", Code),
    ("stage", "催收阶段", "Stage", Text),
    ("attempts", "尝试次数", "Attempts", Count),
    ("next_attempt_at", "下次尝试", "Next attempt", Date),
    ("due_on", "到期日", "Due on", Date),
    ("days_overdue", "逾期天数", "Days overdue", Count),
    ("late_fee", "违约金", "Late fee", Money),
    ("source", "来源", "Source", Text),
    ("health", "健康状况", "Health", Code),
    (
        "consecutive_failures",
        "连续失败次数",
        "Failures in a row",
        Count,
    ),
    ("last_run_started", "最近运行", "Last run", Date),
    ("last_run_outcome", "最近结果", "Last outcome", Code),
    (
        "last_run_files",
        "最近文件数",
        "Files in the last run",
        Count,
    ),
    (
        "last_run_payments",
        "最近付款数",
        "Payments in the last run",
        Count,
    ),
];

fn entry(column: &str) -> Option<&'static (&'static str, &'static str, &'static str, Kind)> {
    COLUMNS.iter().find(|c| c.0 == column)
}

/// The kind of `column` (text when it is not registered: the safe side for CSV).
pub fn kind(column: &str) -> Kind {
    entry(column).map(|c| c.3).unwrap_or(Kind::Text)
}

/// Whether `column` is registered.
pub fn known(column: &str) -> bool {
    entry(column).is_some()
}

/// The heading of `column` in `language` (`zh` or `en`); the column name, spaced, when
/// unknown.
pub fn heading(column: &str, language: &str) -> String {
    match entry(column) {
        Some((_, zh, _, _)) if is_zh(language) => zh.to_string(),
        Some((_, _, en, _)) => en.to_string(),
        None => column.replace('_', " "),
    }
}

/// `zh`, `zh-CN`, ...: Chinese; anything else English.
pub fn is_zh(language: &str) -> bool {
    let l = language.to_ascii_lowercase();
    l == "zh" || l.starts_with("zh-") || l.starts_with("zh_")
}

/// The words for codes: (set, code, Chinese, English).
const WORDS: &[(&str, &str, &str, &str)] = &[
    // payment statuses
    ("status", "pending", "待匹配", "pending"),
    ("status", "applied", "已销账", "applied"),
    ("status", "partially_applied", "部分销账", "partly applied"),
    ("status", "credit", "转预存", "held as credit"),
    ("status", "exception", "异常挂账", "in the exceptions queue"),
    ("status", "reversed", "已冲正", "reversed"),
    ("status", "refunded", "已退款", "refunded"),
    (
        "status",
        "rejected",
        "已剔除（重复）",
        "rejected as duplicate",
    ),
    (
        "status",
        "cancelled",
        "已撤销（实时冲正）",
        "cancelled (reversed online)",
    ),
    (
        "status",
        "confirmed",
        "已确认（实时入账）",
        "confirmed (posted online)",
    ),
    ("status", "transfer", "清算划转", "settlement transfer"),
    ("status", "not_booked", "未记账", "not booked"),
    // exception and resolution statuses
    ("status", "open", "未处理", "open"),
    ("status", "resolved", "已处理", "resolved"),
    ("status", "done", "已完成", "done"),
    ("status", "proposed", "待主管批准", "awaiting approval"),
    ("status", "declined", "已驳回", "declined"),
    ("status", "reopened", "已重新打开", "reopened"),
    // runs of a bank's pull
    ("run", "ok", "成功", "ok"),
    ("run", "failed", "失败", "failed"),
    ("run", "running", "进行中", "running"),
    ("run", "cancelled", "已取消（停机）", "cancelled (shutdown)"),
    // exception reasons
    (
        "reason",
        "unknown_reference",
        "无法识别的参考号",
        "unknown reference",
    ),
    (
        "reason",
        "ambiguous_reference",
        "参考号指向多个客户",
        "ambiguous reference",
    ),
    (
        "reason",
        "currency_mismatch",
        "币种不符",
        "currency mismatch",
    ),
    ("reason", "unexpected_debit", "意外借记", "unexpected debit"),
    ("reason", "duplicate", "重复交易", "duplicate"),
    ("reason", "zero_amount", "金额为零", "zero amount"),
    (
        "reason",
        "reversal_unmatched",
        "冲正找不到原交易",
        "reversal without original",
    ),
    (
        "reason",
        "reversal_ambiguous",
        "冲正对应多笔",
        "ambiguous reversal",
    ),
    (
        "reason",
        "reversal_of_exception",
        "冲正异常交易",
        "reversal of an exception",
    ),
    ("reason", "all", "全部", "all"),
    // directions
    ("direction", "credit", "贷记（收入）", "credit (in)"),
    ("direction", "debit", "借记（支出）", "debit (out)"),
    // risk
    ("risk", "high", "高", "high"),
    ("risk", "medium", "中", "medium"),
    ("risk", "low", "低", "low"),
    // the dimension of a row
    ("by", "class", "用电类别", "customer class"),
    ("by", "manager", "客户经理", "customer manager"),
    ("by", "bank", "缴费银行", "paying bank"),
    ("by", "channel", "缴费渠道", "payment channel"),
    ("by", "day", "日趋势", "day"),
    ("by", "all", "全部", "all"),
    // customer classes
    ("class", "residential", "居民生活", "residential"),
    ("class", "commercial", "商业", "commercial"),
    ("class", "industrial", "一般工业", "industrial"),
    ("class", "large_industrial", "大工业", "large industrial"),
    ("class", "agricultural", "农业生产", "agricultural"),
    ("class", "all", "全部", "all"),
    // channels
    ("channel", "file", "对账文件", "bank file"),
    ("channel", "online", "线上", "online"),
    ("channel", "counter", "柜面", "counter"),
    ("channel", "app", "手机银行", "app"),
    ("channel", "atm", "自助设备", "ATM"),
    ("channel", "direct_debit", "代扣", "direct debit"),
    ("channel", "internet", "网上银行", "internet banking"),
    // settlement of a partner bank's day
    ("settlement", "pending", "待划转", "pending"),
    ("settlement", "settled", "已到账", "settled"),
    ("settlement", "short", "到账不足", "short"),
    ("settlement", "over", "到账超额", "over"),
    ("settlement", "missing", "未到账", "missing"),
    // allocation rules
    ("rule", "bill_reference", "按账单号", "bill reference"),
    (
        "rule",
        "bill_reference_remainder",
        "账单号余额",
        "rest of a bill reference",
    ),
    (
        "rule",
        "closed_bill_redirect",
        "已结清账单转至其他账单",
        "closed bill redirected",
    ),
    (
        "rule",
        "account_oldest_first",
        "按户号最早账单",
        "account, oldest bill first",
    ),
    ("rule", "reversal", "冲正", "reversal"),
    ("rule", "manual", "人工", "manual"),
    ("rule", "manual_split", "人工拆分", "manual split"),
    ("rule", "write_off", "核销", "write-off"),
    ("rule", "reopen", "重新打开", "reopen"),
    ("rule", "late_fee", "违约金", "late fee"),
    ("rule", "bill_cancelled", "账单作废转出", "bill cancelled"),
    ("rule", "bill_lowered", "账单调减转出", "bill lowered"),
    (
        "rule",
        "late_fee_released",
        "违约金退回预存",
        "late fee released",
    ),
    // what an allocation settles
    ("part", "principal", "电费本金", "principal"),
    ("part", "late_fee", "违约金", "late fee"),
    // the workbench's actions and audit entries
    ("action", "apply_bill", "销账到账单", "apply to a bill"),
    (
        "action",
        "apply_account",
        "销账到户号",
        "apply to an account",
    ),
    ("action", "split", "拆分到多张账单", "split across bills"),
    ("action", "credit", "转为预存", "hold as credit"),
    ("action", "refund", "退款", "refund to the payer"),
    (
        "action",
        "write_off",
        "核销小额差额",
        "write off a small difference",
    ),
    (
        "action",
        "reject_duplicate",
        "剔除重复",
        "reject as duplicate",
    ),
    (
        "action",
        "propose_refund",
        "提交退款待批准",
        "refund proposed",
    ),
    ("action", "approve", "批准", "approved"),
    ("action", "decline", "驳回", "declined"),
    ("action", "reopen", "重新打开", "reopened"),
    ("action", "refund_paid", "已退款", "refund paid"),
    ("action", "escalate", "升级", "escalated"),
    ("action", "waive_late_fee", "减免违约金", "late fee waived"),
    (
        "action",
        "bill_cancelled",
        "账单作废，款项转出",
        "bill cancelled, money moved",
    ),
    (
        "action",
        "bill_lowered",
        "账单调减，款项转出",
        "bill lowered, money moved",
    ),
    // roles
    ("role", "viewer", "查看", "viewer"),
    ("role", "clerk", "经办", "clerk"),
    ("role", "supervisor", "主管", "supervisor"),
    ("role", "admin", "管理员", "admin"),
    // bank health
    ("health", "healthy", "正常", "healthy"),
    ("health", "unhealthy", "异常", "unhealthy"),
];

/// The word for `code` of the set `set` (`status`, `reason`, `direction`, `risk`, `by`,
/// `class`, `channel`, `settlement`, `rule`, `action`, `health`) in `language`; the code
/// itself when there is none.
pub fn word(set: &str, code: &str, language: &str) -> String {
    let set = match set {
        "exception_reason" => "reason",
        "last_run_outcome" => "run",
        s => s,
    };
    match WORDS.iter().find(|w| w.0 == set && w.1 == code) {
        Some((_, _, zh, _)) if is_zh(language) => zh.to_string(),
        Some((_, _, _, en)) => en.to_string(),
        None => code.to_string(),
    }
}

/// `1234567.5` -> `1,234,567.50`-style grouping of a decimal string (the decimals kept).
pub fn grouped(v: &str) -> String {
    let (sign, digits) = match v.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", v),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    if !int.chars().all(|c| c.is_ascii_digit()) || int.is_empty() {
        return v.to_string();
    }
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// An amount as people write it: thousands separators and the currency (`¥1,234.50` in
/// Chinese, `CNY 1,234.50` in English; other currencies by their code).
pub fn money(v: &str, currency: &str, language: &str) -> String {
    if v.parse::<Decimal>().is_err() {
        return v.to_string();
    }
    let g = grouped(v);
    if is_zh(language) && currency == "CNY" {
        match g.strip_prefix('-') {
            Some(rest) => format!("-¥{rest}"),
            None => format!("¥{g}"),
        }
    } else if currency.is_empty() {
        g
    } else {
        format!("{currency} {g}")
    }
}

/// A date as people write it: `2026年11月12日`, `12 Nov 2026` (a timestamp keeps its time).
pub fn date(v: &str, language: &str) -> String {
    let (d, rest) = v.split_at(v.len().min(10));
    let Ok(d) = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
        return v.to_string();
    };
    let time = rest
        .trim_start_matches('T')
        .trim_end_matches('Z')
        .get(..5)
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    if is_zh(language) {
        format!("{}{time}", d.format("%Y年%-m月%-d日"))
    } else {
        format!("{}{time}", d.format("%-d %b %Y"))
    }
}

/// A moment (RFC 3339, as the store keeps them in UTC) as people read it, in the daemon's
/// time zone: `2026年12月2日 23:34`, `2 Dec 2026 23:34`; a plain date as [`date`].
pub fn local_time(v: &str, language: &str, tz: chrono_tz::Tz) -> String {
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => {
            let t = t.with_timezone(&tz);
            if is_zh(language) {
                t.format("%Y年%-m月%-d日 %H:%M").to_string()
            } else {
                t.format("%-d %b %Y %H:%M").to_string()
            }
        }
        Err(_) => date(v, language),
    }
}

/// A cell of `column` as people read it (the row's `currency` for amounts).
pub fn display(column: &str, v: &str, currency: &str, language: &str) -> String {
    if v.is_empty() {
        return String::new();
    }
    match kind(column) {
        Kind::Money => money(v, currency, language),
        Kind::Count => grouped(v),
        Kind::Percent => format!("{v}%"),
        Kind::Days => v.to_string(),
        Kind::Date => date(v, language),
        Kind::Code => word(column, v, language),
        Kind::Text if column == "detail" || column == "exception_detail" => detail(v, language),
        Kind::Text => v.to_string(),
    }
}

/// An exception's detail in `language`: the matcher writes them in English; the known
/// sentences are put into Chinese with their figures (an unknown one is shown as it is).
pub fn detail(text: &str, language: &str) -> String {
    if !is_zh(language) {
        return text.to_string();
    }
    detail_zh(text).unwrap_or_else(|| text.to_string())
}

fn detail_zh(t: &str) -> Option<String> {
    use regex::Regex;
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules =
        RULES.get_or_init(|| {
            [
            (
                r"^same bank transaction as payment (\d+) \(key (.*)\)$",
                "与付款 $1 为同一笔银行交易（交易键 $2）",
            ),
            (
                r"^a debit that is not a reversal: money leaving the collection account$",
                "不是冲正的借记：资金流出收款账户",
            ),
            (r"^amount is zero$", "金额为零"),
            (
                r"^payment in (\S+), bills are in (\S+)$",
                "付款币种为 $1，账单币种为 $2",
            ),
            (
                r"^payment in (\S+), bill (.+) is in (\S+)$",
                "付款币种为 $1，账单 $2 的币种为 $3",
            ),
            (r"^the payment carries no reference$", "付款没有参考号或附言"),
            (
                r"^no known bill or account among: (.*)$",
                "以下均不是已知的账单号或户号：$1",
            ),
            (
                r"^payment (\d+) fits but was already reversed$",
                "付款 $1 相符，但已被冲正",
            ),
            (
                r"^payment (\d+) has the same reference but amount (\S+) instead of (\S+)$",
                "付款 $1 参考号相同，但金额为 $2 而不是 $3",
            ),
            (
                r"^no earlier payment with the same end-to-end id or bank reference and amount$",
                "找不到端到端编号或银行流水号与金额都相同的原付款",
            ),
            (
                r"^reverses payment (\d+), which is itself in the exceptions queue$",
                "冲正的付款 $1 本身在异常队列中",
            ),
            (r"^fits payments (.*)$", "与多笔付款相符：$1"),
            (r"^no bill (.+)$", "没有账单 $1"),
            (r"^no account (.+)$", "没有户号 $1"),
            (
                r"^bill (.+) is in (\S+), the payment in (\S+)$",
                "账单 $1 的币种为 $2，付款为 $3",
            ),
        ]
        .into_iter()
        .map(|(re, zh)| (Regex::new(re).expect("a valid pattern"), zh))
        .collect()
        });
    if let Some(rest) = t.strip_prefix("references name different customers: ") {
        // "4100000001 (via bill B1, account 4100000001) and 4100000002 (via bill B2)"
        let parts: Vec<String> = rest
            .split(") and ")
            .map(|p| {
                p.trim_end_matches(')')
                    .replace(" (via ", "（经由 ")
                    .replace("bill ", "账单 ")
                    .replace("account ", "户号 ")
                    .replace(", ", "、")
                    + "）"
            })
            .collect();
        return Some(format!("参考号指向不同客户：{}", parts.join("和")));
    }
    rules
        .iter()
        .find(|(re, _)| re.is_match(t))
        .map(|(re, zh)| re.replace(t, *zh).into_owned())
}

/// A message of the workbench (why a resolution was refused, what a form lacks) in
/// `language`: the known sentences put into Chinese with their figures; others as they are.
pub fn message(text: &str, language: &str) -> String {
    if !is_zh(language) {
        return text.to_string();
    }
    message_zh(text).unwrap_or_else(|| text.to_string())
}

fn message_zh(t: &str) -> Option<String> {
    use regex::Regex;
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"^(\S+) needs the (\S+) role; (.+) is a (\S+)$", "{1}需要{2}权限；{3}的角色是{4}"),
            (r"^a comment is required: say why$", "必须填写说明：请写明理由"),
            (
                r"^exception (\d+) is already resolved; reopen its resolution first$",
                "异常 {1} 已处理；如需更改，请先重新打开其处理",
            ),
            (
                r"^exception (\d+) has resolution (\d+) awaiting a supervisor's approval$",
                "异常 {1} 的处理 {2} 正等待主管批准",
            ),
            (
                r"^payment (\d+) is not a duplicate \(its exception is (\S+)\)$",
                "付款 {1} 不是重复交易（其异常原因为{2}）",
            ),
            (
                r"^payment (\d+) is not money received: nothing to refund$",
                "付款 {1} 不是收款，无款可退",
            ),
            (
                r"^payment (\d+) is not money received \(a debit, a reversal or zero\): it cannot go to bills or credit$",
                "付款 {1} 不是收款（借记、冲正或零金额），不能销账或转预存",
            ),
            (
                r"^payment (\d+) is a copy of a transaction already counted: reject it as a duplicate, or refund it$",
                "付款 {1} 是已入账交易的重复：请剔除重复或退款",
            ),
            (
                r"^payment (\d+) is in (\S+), bills are in (\S+): refund it$",
                "付款 {1} 的币种为 {2}，账单为 {3}：请退款",
            ),
            (r"^no account (.+)$", "没有户号 {1}"),
            (r"^no bill (.+)$", "没有账单 {1}"),
            (r"^no exception (.+)$", "没有异常 {1}"),
            (r"^no payment (.+)$", "没有付款 {1}"),
            (r"^no resolution (.+)$", "没有处理记录 {1}"),
            (
                r"^payment (\d+) names no earlier payment it duplicates$",
                "付款 {1} 没有指明所重复的原付款",
            ),
            (
                r"^payment (\d+) differs from payment (\d+) in bank or amount: not a plain duplicate$",
                "付款 {1} 与付款 {2} 的银行或金额不同，不是单纯的重复",
            ),
            (r"^bill (\S+) is in (\S+), the payment in (\S+)$", "账单 {1} 的币种为 {2}，付款为 {3}"),
            (r"^bill (\S+) has nothing open to pay$", "账单 {1} 没有未缴金额"),
            (
                r"^the payment equals bill (\S+)'s open balance: apply it, nothing to write off$",
                "付款金额等于账单 {1} 的未缴余额：直接销账，无需核销",
            ),
            (
                r"^the difference (\S+) (\S+) is above the write-off limit (\S+) (\S+)$",
                "差额 {1} {2} 超过核销限额 {3} {4}",
            ),
            (r"^bill (\S+) appears twice$", "账单 {1} 出现了两次"),
            (
                r"^bill (\S+): (\S+) is not between 0 and its open balance (\S+)$",
                "账单 {1}：{2} 不在 0 与其未缴余额 {3} 之间",
            ),
            (
                r"^the parts add up to (\S+), more than the payment's (\S+)$",
                "拆分合计 {1}，超过付款金额 {2}",
            ),
            (r"^a split needs at least one part$", "拆分至少需要一项"),
            (
                r"^four eyes: (\S+) proposed resolution (\d+); someone else must approve it$",
                "四眼原则：处理 {2} 由 {1} 提交，须由他人批准",
            ),
            (r"^payment (\d+) is no longer in the queue$", "付款 {1} 已不在异常队列中"),
            (r"^the refund's payout reference is required$", "必须填写退款流水号"),
            (
                r"^payment (\d+) was reversed by the bank since; its reversal undid the resolution$",
                "付款 {1} 此后已被银行冲正，冲正已撤销该处理",
            ),
            (r"^exception (\d+) is not resolved$", "异常 {1} 尚未处理"),
            (r"^the bill is required$", "请填写账单号"),
            (r"^the account is required$", "请填写户号"),
            (r"^the split \(BILL=AMOUNT,...\) is required$", "请填写拆分（账单=金额,...）"),
            (r"^`(.*)`: expected BILL=AMOUNT$", "`{1}`：应为 账单=金额"),
            (r"^`(.*)`: expected rest=ACCOUNT$", "`{1}`：应为 rest=户号"),
            (r"^`(.*)` is not an amount$", "`{1}` 不是金额"),
            (r"^unknown action `(.*)`$", "未知的操作 `{1}`"),
        ]
        .into_iter()
        .map(|(re, zh)| (Regex::new(re).expect("a valid pattern"), zh))
        .collect()
    });
    let (re, zh) = rules.iter().find(|(re, _)| re.is_match(t))?;
    let caps = re.captures(t)?;
    let mut out = zh.to_string();
    for i in (1..caps.len()).rev() {
        let v = caps.get(i).map(|m| m.as_str()).unwrap_or("");
        // roles and reasons read as words too
        let v = match WORDS
            .iter()
            .find(|w| ["reason", "role", "action"].contains(&w.0) && w.1 == v)
        {
            Some(w) => w.2.to_string(),
            None => v.to_string(),
        };
        out = out.replace(&format!("{{{i}}}"), &v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_and_export_column_is_registered_with_both_headings() {
        for cols in [
            super::super::settlement::COLUMNS,
            super::super::settlement::LINE_COLUMNS,
            super::super::exceptions::COLUMNS,
            super::super::ageing::COLUMNS,
            super::super::collection::COLUMNS,
            super::super::customers::KEY_COLUMNS,
            super::super::customers::BEHAVIOUR_COLUMNS,
            crate::store::export::PAYMENT_COLUMNS,
            crate::store::export::ALLOCATION_COLUMNS,
            crate::store::export::LATE_FEE_COLUMNS,
            crate::store::export::EXCEPTION_COLUMNS,
            crate::store::workbench::AUDIT_COLUMNS,
        ] {
            for c in cols {
                assert!(known(c), "{c} is not in labels::COLUMNS");
                assert!(!heading(c, "zh").is_ascii(), "{c} has no Chinese heading");
            }
        }
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a column is registered twice");
        assert_eq!(heading("late_fees", "en"), "Late fees");
        assert_eq!(heading("no_such_thing", "en"), "no such thing");
    }

    #[test]
    fn amounts_counts_and_dates_read_as_people_write_them() {
        assert_eq!(money("481840445.51", "CNY", "zh"), "¥481,840,445.51");
        assert_eq!(money("481840445.51", "CNY", "en"), "CNY 481,840,445.51");
        assert_eq!(money("-1234.5", "CNY", "zh"), "-¥1,234.5");
        assert_eq!(money("999.00", "USD", "zh"), "USD 999.00");
        assert_eq!(money("0.00", "CNY", "en"), "CNY 0.00");
        assert_eq!(grouped("1234567"), "1,234,567");
        assert_eq!(grouped("123"), "123");
        assert_eq!(date("2026-11-12", "zh"), "2026年11月12日");
        assert_eq!(date("2026-11-02", "en"), "2 Nov 2026");
        assert_eq!(date("2026-11-02T08:30:00Z", "en"), "2 Nov 2026 08:30");
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            local_time("2026-12-02T15:34:00Z", "zh", shanghai),
            "2026年12月2日 23:34"
        );
        assert_eq!(local_time("2026-12-02", "en", shanghai), "2 Dec 2026");
        assert_eq!(display("risk", "high", "", "zh"), "高");
        assert_eq!(display("status", "credit", "", "en"), "held as credit");
        assert_eq!(display("direction", "credit", "", "en"), "credit (in)");
        assert_eq!(display("collection_rate_pct", "85.20", "", "en"), "85.20%");
    }

    #[test]
    fn the_matchers_details_read_in_chinese() {
        for (en, zh) in [
            (
                "same bank transaction as payment 5698 (key ICBC|E1|100)",
                "与付款 5698 为同一笔银行交易（交易键 ICBC|E1|100）",
            ),
            (
                "a debit that is not a reversal: money leaving the collection account",
                "不是冲正的借记：资金流出收款账户",
            ),
            ("amount is zero", "金额为零"),
            ("payment in USD, bills are in CNY", "付款币种为 USD，账单币种为 CNY"),
            (
                "payment in USD, bill B-1 is in CNY",
                "付款币种为 USD，账单 B-1 的币种为 CNY",
            ),
            ("the payment carries no reference", "付款没有参考号或附言"),
            (
                "no known bill or account among: X1, Y2, ...",
                "以下均不是已知的账单号或户号：X1, Y2, ...",
            ),
            (
                "references name different customers: 4100000001 (via bill B1, account 4100000001) and 4100000002 (via bill B2)",
                "参考号指向不同客户：4100000001（经由 账单 B1、户号 4100000001）和4100000002（经由 账单 B2）",
            ),
            ("payment 12 fits but was already reversed", "付款 12 相符，但已被冲正"),
            (
                "payment 12 has the same reference but amount 10.00 instead of 12.00",
                "付款 12 参考号相同，但金额为 10.00 而不是 12.00",
            ),
            (
                "no earlier payment with the same end-to-end id or bank reference and amount",
                "找不到端到端编号或银行流水号与金额都相同的原付款",
            ),
            (
                "reverses payment 7, which is itself in the exceptions queue",
                "冲正的付款 7 本身在异常队列中",
            ),
            ("fits payments 3, 4", "与多笔付款相符：3, 4"),
            ("no bill B-9", "没有账单 B-9"),
            ("no account 41", "没有户号 41"),
            (
                "bill B-1 is in USD, the payment in CNY",
                "账单 B-1 的币种为 USD，付款为 CNY",
            ),
        ] {
            assert_eq!(detail(en, "zh"), zh, "{en}");
            assert_eq!(detail(en, "en"), en);
        }
        assert_eq!(detail("something new", "zh"), "something new");
        for (en, zh) in [
            (
                "write_off needs the supervisor role; li is a clerk",
                "核销小额差额需要主管权限；li的角色是经办",
            ),
            ("a comment is required: say why", "必须填写说明：请写明理由"),
            (
                "payment 7 is not a duplicate (its exception is unknown_reference)",
                "付款 7 不是重复交易（其异常原因为无法识别的参考号）",
            ),
            (
                "the difference 0.30 CNY is above the write-off limit 0.10 CNY",
                "差额 0.30 CNY 超过核销限额 0.10 CNY",
            ),
            ("the bill is required", "请填写账单号"),
        ] {
            assert_eq!(message(en, "zh"), zh, "{en}");
            assert_eq!(message(en, "en"), en);
        }
    }
}
