//! The dunning policy (`[dunning]` in the config): stages, late fees, grace, the business-day
//! calendar, per customer class with defaults for all.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DunningConfig {
    /// Days after the due date before anything happens.
    #[serde(default = "default_grace")]
    pub grace_days: i64,
    /// At most one notice per customer in this many days, whatever the number of bills.
    #[serde(default = "default_interval")]
    pub notice_interval_days: i64,
    /// Public holidays (no notices on them) ...
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// ... and weekend days that are working days (调休).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
    /// Banks whose file for the previous business day must be in before dunning (default:
    /// every bank with a source).
    pub wait_for_banks: Option<Vec<String>>,
    /// The hotline named in notices.
    #[serde(default = "default_hotline")]
    pub hotline: String,
    /// The late fee of every class without its own (`[dunning.class.X] late_fee`); unset, the
    /// built-in rates of the supply rules apply (see [`LateFeeRule::builtin`]).
    #[serde(default)]
    pub late_fee: Option<LateFeeRule>,
    /// `with_payment`: when money reaches an overdue bill, the fee accrued on the amount paid
    /// late is charged to the bill and collected with the payment; `off`: fees are only shown
    /// (the billing system charges them itself).
    #[serde(default)]
    pub late_fee_collect: LateFeeCollect,
    /// What the plan does about a bill whose principal is paid but whose late fee is still
    /// owed: this stage (from its `days_after_due`, at or above its `min_amount` of fee owed),
    /// or nothing when unset.
    pub late_fee_stage: Option<Stage>,
    #[serde(default = "default_stages", rename = "stage")]
    pub stages: Vec<Stage>,
    /// Per customer class (`residential`, `commercial`, ...): what differs from the defaults.
    #[serde(default)]
    pub class: BTreeMap<String, ClassPolicy>,
    /// The language of notices (`zh` or `en`): templates are `TEMPLATE.LANG.txt`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Where the notice templates (minijinja) are.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: std::path::PathBuf,
    /// No SMS between these local times (`HH:MM`); such notices wait until the end.
    #[serde(default = "default_quiet_start")]
    pub quiet_hours_start: chrono::NaiveTime,
    #[serde(default = "default_quiet_end")]
    pub quiet_hours_end: chrono::NaiveTime,
    /// The notification gateway notices are posted to; without one they stay queued.
    pub gateway: Option<GatewayConfig>,
    /// Field operations' webhook: accounts eligible for disconnection (notice period over,
    /// still unpaid), and the cancellation when one of them pays. Same signing as the gateway.
    pub field_ops: Option<GatewayConfig>,
    /// When the daemon runs dunning (cron with seconds, in `daemon.time_zone`); `""` never.
    #[serde(default = "default_dunning_schedule")]
    pub schedule: String,
    /// Also treat the customers with the largest billed amounts as key accounts (0: only
    /// those flagged `key_account`).
    #[serde(default)]
    pub key_accounts_top_n: i64,
    /// Channels on which a customer is told that a payment arrived and was applied (none:
    /// no receipts).
    #[serde(default)]
    pub receipt_channels: Vec<String>,
    /// Seconds between two looks at the outbox for notices due.
    #[serde(default = "default_delivery_interval")]
    pub delivery_interval_secs: u64,
}

fn default_dunning_schedule() -> String {
    "0 0 9 * * *".into()
}
fn default_delivery_interval() -> u64 {
    30
}

/// The utility's SMS / e-mail / WeChat gateway: each notice is POSTed as JSON, signed with
/// HMAC-SHA256 over the body (`X-Billrecon-Signature: sha256=HEX`), with its idempotency key
/// (`Idempotency-Key`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub url: String,
    /// The signing secret: the content of this file, or of this environment variable.
    pub secret_file: Option<std::path::PathBuf>,
    pub secret_env: Option<String>,
    /// Attempts before a notice is given up (dead letter).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    /// First retry delay; doubled on each attempt.
    #[serde(default = "default_backoff")]
    pub backoff_secs: i64,
    #[serde(default = "default_gateway_timeout")]
    pub timeout_secs: u64,
}

fn default_max_attempts() -> i64 {
    8
}
fn default_backoff() -> i64 {
    60
}
fn default_gateway_timeout() -> u64 {
    10
}

impl GatewayConfig {
    /// The signing secret (errors name the file or variable, never the value).
    pub fn secret(&self) -> Result<String, String> {
        match (&self.secret_file, &self.secret_env) {
            (Some(f), None) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("gateway secret file {}: {e}", f.display())),
            (None, Some(v)) => std::env::var(v)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("gateway secret: environment variable {v} is not set")),
            _ => Err("gateway: set exactly one of secret_file and secret_env".into()),
        }
    }
}

fn default_language() -> String {
    "zh".into()
}
fn default_templates_dir() -> std::path::PathBuf {
    "config/templates".into()
}
fn default_quiet_start() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default()
}
fn default_quiet_end() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()
}

/// What a customer class changes.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ClassPolicy {
    pub grace_days: Option<i64>,
    pub late_fee: Option<LateFeeRule>,
    #[serde(rename = "stage")]
    pub stages: Option<Vec<Stage>>,
}

/// Whether late fees are charged and collected with payments.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LateFeeCollect {
    /// Charged to the bill when money reaches it late, and collected with that money.
    #[default]
    WithPayment,
    /// Only shown (plan, notices, partner API, ageing), never charged.
    Off,
}

/// Late fee (违约金): a daily rate on the overdue amount from the day after the due date.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LateFeeRule {
    /// Daily rate on arrears of the current year, e.g. 0.002 (two per mille a day).
    pub daily_rate: Decimal,
    /// Daily rate on arrears from earlier years (跨年度欠费).
    pub earlier_years_daily_rate: Decimal,
    /// A bill's fee total above zero but under this is charged as this (default 1.00: "总额
    /// 不足1元者按1元收取"; 0 for none).
    #[serde(default = "default_minimum")]
    pub minimum: Decimal,
}

fn default_minimum() -> Decimal {
    Decimal::ONE
}

/// The supply rules' rates (供电营业规则 1996, art. 98): residential customers 1 per mille a
/// day whatever the year; every other class 2 per mille on the current year's arrears and 3
/// on earlier years'; a total under 1 yuan charged as 1 yuan.
static RESIDENTIAL: std::sync::LazyLock<LateFeeRule> = std::sync::LazyLock::new(|| LateFeeRule {
    daily_rate: Decimal::new(1, 3),
    earlier_years_daily_rate: Decimal::new(1, 3),
    minimum: Decimal::ONE,
});
static OTHER_CLASSES: std::sync::LazyLock<LateFeeRule> = std::sync::LazyLock::new(|| LateFeeRule {
    daily_rate: Decimal::new(2, 3),
    earlier_years_daily_rate: Decimal::new(3, 3),
    minimum: Decimal::ONE,
});

impl LateFeeRule {
    /// The built-in rule of a customer class: the supply rules' rates (see the statics above).
    pub fn builtin(class: &str) -> &'static LateFeeRule {
        if class == "residential" {
            &RESIDENTIAL
        } else {
            &OTHER_CLASSES
        }
    }

    pub fn rates(&self) -> crate::domain::late_fee::Rates {
        crate::domain::late_fee::Rates {
            current_year: self.daily_rate,
            earlier_years: self.earlier_years_daily_rate,
        }
    }

    /// The minimum in minor units of `currency`.
    pub fn minimum_minor(&self, currency: crate::domain::Currency) -> i64 {
        crate::domain::late_fee::minor_of(self.minimum, currency.exponent())
    }
}

/// One stage of the reminder ladder.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    /// Days after the due date from which this stage applies.
    pub days_after_due: i64,
    /// sms, email, letter, manager
    pub channels: Vec<String>,
    /// Template name under config/templates/.
    pub template: String,
    /// Only when the customer owes at least this much (overdue, all bills).
    #[serde(default)]
    pub min_amount: Decimal,
    /// The disconnection warning: disconnection may follow this many days after the notice
    /// is delivered (the legal notice period).
    pub disconnection_notice_days: Option<i64>,
}

fn default_grace() -> i64 {
    3
}
fn default_interval() -> i64 {
    7
}
fn default_hotline() -> String {
    "95598".into()
}

fn default_stages() -> Vec<Stage> {
    let stage = |name: &str, days, channels: &[&str], min: i64, notice| Stage {
        name: name.into(),
        days_after_due: days,
        channels: channels.iter().map(|c| c.to_string()).collect(),
        template: name.into(),
        min_amount: Decimal::new(min, 0),
        disconnection_notice_days: notice,
    };
    vec![
        stage("reminder", 3, &["sms"], 1, None),
        stage("second_reminder", 15, &["sms", "email"], 1, None),
        stage("final_notice", 30, &["sms", "letter"], 10, None),
        stage("disconnection_warning", 45, &["letter", "sms"], 50, Some(7)),
    ]
}

impl Default for DunningConfig {
    fn default() -> Self {
        DunningConfig {
            grace_days: default_grace(),
            notice_interval_days: default_interval(),
            holidays: vec![],
            workdays: vec![],
            wait_for_banks: None,
            hotline: default_hotline(),
            late_fee: None,
            late_fee_collect: LateFeeCollect::default(),
            late_fee_stage: None,
            stages: default_stages(),
            class: BTreeMap::new(),
            language: default_language(),
            templates_dir: default_templates_dir(),
            quiet_hours_start: default_quiet_start(),
            quiet_hours_end: default_quiet_end(),
            gateway: None,
            field_ops: None,
            schedule: default_dunning_schedule(),
            delivery_interval_secs: default_delivery_interval(),
            key_accounts_top_n: 0,
            receipt_channels: vec![],
        }
    }
}

const CHANNELS: &[&str] = &["sms", "email", "letter", "manager"];
const CLASSES: &[&str] = &[
    "residential",
    "commercial",
    "industrial",
    "large_industrial",
    "agricultural",
];

fn validate_stages(stages: &[Stage], at: &str) -> Result<(), String> {
    if stages.is_empty() {
        return Err(format!("{at}: at least one stage"));
    }
    for (i, s) in stages.iter().enumerate() {
        if i > 0 && s.days_after_due <= stages[i - 1].days_after_due {
            return Err(format!(
                "{at}: stage `{}` must come later than `{}` (days_after_due)",
                s.name,
                stages[i - 1].name
            ));
        }
        if let Some(c) = s.channels.iter().find(|c| !CHANNELS.contains(&c.as_str())) {
            return Err(format!(
                "{at}: stage `{}`: unknown channel `{c}` (known: {})",
                s.name,
                CHANNELS.join(", ")
            ));
        }
        if s.disconnection_notice_days.is_some() && i + 1 != stages.len() {
            return Err(format!(
                "{at}: only the last stage may be a disconnection warning (`{}` is not last)",
                s.name
            ));
        }
    }
    Ok(())
}

fn validate_fee(f: &LateFeeRule, at: &str) -> Result<(), String> {
    if f.daily_rate < Decimal::ZERO
        || f.earlier_years_daily_rate < Decimal::ZERO
        || f.minimum < Decimal::ZERO
    {
        return Err(format!(
            "{at}: late fee rates and minimum cannot be negative"
        ));
    }
    if f.daily_rate > Decimal::new(1, 2) || f.earlier_years_daily_rate > Decimal::new(1, 2) {
        return Err(format!(
            "{at}: a daily late-fee rate above 1% is surely a typo"
        ));
    }
    Ok(())
}

impl DunningConfig {
    pub fn validate(&self) -> Result<(), String> {
        validate_stages(&self.stages, "stages")?;
        if let Some(f) = &self.late_fee {
            validate_fee(f, "late_fee")?;
        }
        if let Some(s) = &self.late_fee_stage {
            validate_stages(std::slice::from_ref(s), "late_fee_stage")?;
            if s.disconnection_notice_days.is_some() {
                return Err(
                    "late_fee_stage: a late fee alone is no ground for disconnection".into(),
                );
            }
        }
        if !["zh", "en"].contains(&self.language.as_str()) {
            return Err(format!("language `{}`: use zh or en", self.language));
        }
        for g in self.gateway.iter().chain(self.field_ops.iter()) {
            reqwest::Url::parse(&g.url).map_err(|e| format!("gateway.url `{}`: {e}", g.url))?;
            g.secret()?;
            if g.max_attempts < 1 || g.backoff_secs < 1 {
                return Err("gateway: max_attempts and backoff_secs must be at least 1".into());
            }
        }
        if !self.schedule.is_empty() {
            super::parse_schedule(&self.schedule).map_err(|e| format!("schedule: {e}"))?;
        }
        if let Some(c) = self
            .receipt_channels
            .iter()
            .find(|c| !["sms", "email", "letter"].contains(&c.as_str()))
        {
            return Err(format!("receipt_channels: unknown channel `{c}`"));
        }
        if self.delivery_interval_secs == 0 {
            return Err("delivery_interval_secs must be at least 1".into());
        }
        if self.notice_interval_days < 1 {
            return Err("notice_interval_days must be at least 1".into());
        }
        for (class, p) in &self.class {
            if !CLASSES.contains(&class.as_str()) {
                return Err(format!(
                    "class `{class}` is not a customer class (known: {})",
                    CLASSES.join(", ")
                ));
            }
            if let Some(st) = &p.stages {
                validate_stages(st, &format!("class.{class}.stage"))?;
            }
            if let Some(f) = &p.late_fee {
                validate_fee(f, &format!("class.{class}.late_fee"))?;
            }
        }
        Ok(())
    }

    /// The policy that applies to a customer class.
    pub fn for_class(&self, class: &str) -> ClassRules<'_> {
        let p = self.class.get(class);
        ClassRules {
            grace_days: p.and_then(|p| p.grace_days).unwrap_or(self.grace_days),
            late_fee: p
                .and_then(|p| p.late_fee.as_ref())
                .or(self.late_fee.as_ref())
                .unwrap_or_else(|| LateFeeRule::builtin(class)),
            stages: p.and_then(|p| p.stages.as_deref()).unwrap_or(&self.stages),
        }
    }
}

/// The rules of one class, defaults filled in.
#[derive(Debug, Clone, Copy)]
pub struct ClassRules<'a> {
    pub grace_days: i64,
    pub late_fee: &'a LateFeeRule,
    pub stages: &'a [Stage],
}

impl ClassRules<'_> {
    /// The latest stage reached `days_overdue` days after the due date.
    pub fn stage_for(&self, days_overdue: i64) -> Option<&Stage> {
        self.stages
            .iter()
            .rev()
            .find(|s| days_overdue >= s.days_after_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<DunningConfig, String> {
        let c: DunningConfig = toml::from_str(t).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn defaults_are_valid_and_classes_override_them() {
        let c = parse(
            "[class.commercial]\ngrace_days = 0\nlate_fee = { daily_rate = '0.002', earlier_years_daily_rate = '0.003' }\n",
        )
        .unwrap();
        let r = c.for_class("residential");
        assert_eq!(r.grace_days, 3);
        assert_eq!(r.stage_for(2), None);
        assert_eq!(r.stage_for(3).unwrap().name, "reminder");
        assert_eq!(r.stage_for(29).unwrap().name, "second_reminder");
        assert_eq!(r.stage_for(400).unwrap().name, "disconnection_warning");
        let b = c.for_class("commercial");
        assert_eq!(b.grace_days, 0);
        assert_eq!(b.late_fee.daily_rate, Decimal::new(2, 3));
    }

    #[test]
    fn built_in_late_fees_follow_the_supply_rules_unless_configured() {
        let c = parse("").unwrap();
        let r = c.for_class("residential").late_fee;
        assert_eq!(
            (r.daily_rate, r.earlier_years_daily_rate, r.minimum),
            (Decimal::new(1, 3), Decimal::new(1, 3), Decimal::ONE)
        );
        for class in [
            "commercial",
            "industrial",
            "large_industrial",
            "agricultural",
        ] {
            let r = c.for_class(class).late_fee;
            assert_eq!(
                (r.daily_rate, r.earlier_years_daily_rate, r.minimum),
                (Decimal::new(2, 3), Decimal::new(3, 3), Decimal::ONE),
                "{class}"
            );
        }
        assert_eq!(c.late_fee_collect, LateFeeCollect::WithPayment);
        // a configured rule applies to every class without its own; the minimum defaults to 1
        let c = parse(
            "late_fee_collect = 'off'\nlate_fee = { daily_rate = '0.0005', earlier_years_daily_rate = '0.0005' }\n",
        )
        .unwrap();
        assert_eq!(c.late_fee_collect, LateFeeCollect::Off);
        let r = c.for_class("residential").late_fee;
        assert_eq!(
            (r.daily_rate, r.minimum),
            (Decimal::new(5, 4), Decimal::ONE)
        );
        assert!(parse("late_fee_collect = 'sometimes'\n").is_err());
        assert!(parse(
            "[late_fee_stage]\nname='fee'\ndays_after_due=30\nchannels=['sms']\ntemplate='late_fee'\ndisconnection_notice_days=3\n"
        )
        .unwrap_err()
        .contains("disconnection"));
    }

    #[test]
    fn bad_policies_name_what_is_wrong() {
        let e = parse("[[stage]]\nname='a'\ndays_after_due=5\nchannels=['pigeon']\ntemplate='a'\n")
            .unwrap_err();
        assert!(e.contains("pigeon"), "{e}");
        let e = parse("[[stage]]\nname='a'\ndays_after_due=5\nchannels=['sms']\ntemplate='a'\n[[stage]]\nname='b'\ndays_after_due=5\nchannels=['sms']\ntemplate='b'\n").unwrap_err();
        assert!(e.contains("later"), "{e}");
        assert!(parse("[class.martian]\ngrace_days=1\n")
            .unwrap_err()
            .contains("martian"));
        assert!(
            parse("late_fee = { daily_rate = '0.5', earlier_years_daily_rate = '0' }\n")
                .unwrap_err()
                .contains("typo")
        );
    }
}
