//! The reports billrecon makes, by the names the config, the CLI and the published files use
//! (`reports` builds them).

/// Every report, by the name the CLI and the published files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Per bank and for all banks: the day's payments and what became of them, beside what
    /// the bank's statements declare.
    DailySettlement,
    /// The day's lines behind the settlement's differences: held in exceptions or reversed.
    SettlementLines,
    /// Exceptions by reason on the booking day: the day's lines that went to the queue (still
    /// open, resolved), and the queue through the day by age.
    Exceptions,
    /// Receivables ageing as of the date, by customer class and by customer manager, with
    /// late fees.
    Ageing,
    /// Collected over billed for the bills of the 30 days up to the date, by class, manager,
    /// bank and in all, days from bill to payment, and the daily trend.
    CollectionRate,
    /// The customers who make up 80 % of the billed amount, with arrears and behaviour.
    KeyCustomers,
    /// Per customer: bills on time, days late, reversed payments, and a risk flag.
    PaymentBehaviour,
}

impl ReportKind {
    pub const ALL: [ReportKind; 7] = [
        ReportKind::DailySettlement,
        ReportKind::SettlementLines,
        ReportKind::Exceptions,
        ReportKind::Ageing,
        ReportKind::CollectionRate,
        ReportKind::KeyCustomers,
        ReportKind::PaymentBehaviour,
    ];

    /// The name of the report's files (`daily-settlement.csv`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ReportKind::DailySettlement => "daily-settlement",
            ReportKind::SettlementLines => "settlement-lines",
            ReportKind::Exceptions => "exceptions",
            ReportKind::Ageing => "ageing",
            ReportKind::CollectionRate => "collection-rate",
            ReportKind::KeyCustomers => "key-customers",
            ReportKind::PaymentBehaviour => "payment-behaviour",
        }
    }

    /// The day a report is about when none is given: the settlement reports close the
    /// previous day, the others describe today.
    pub fn default_date(&self, today: chrono::NaiveDate) -> chrono::NaiveDate {
        match self {
            ReportKind::DailySettlement | ReportKind::SettlementLines => {
                today - chrono::Duration::days(1)
            }
            _ => today,
        }
    }
}
