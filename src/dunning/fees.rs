//! Late fees (违约金) as the policy applies them: a daily rate on the overdue amount, from the
//! day after the due date to the day counted, at the earlier-years rate for the days after the
//! due date's year, with a minimum on the bill's total, in minor units (the arithmetic is
//! `domain::late_fee`, shared with matching, which charges the fee when money arrives).
//!
//! What a bill's fee is on a day: what is owed of the fees already charged to it, plus what
//! its outstanding principal has accrued to that day (what a payment in full that day would be
//! charged, the minimum applied to the bill's total). A waived fee is nothing.

use super::policy::LateFeeRule;
use crate::domain::{late_fee, Currency};
use crate::store::bills::BillFee;
use chrono::NaiveDate;

/// The fee in minor units on `outstanding_minor` owed since `due` (exclusive) to `on`
/// (inclusive), the minimum applied, for a bill with no fee charged yet. Zero when nothing is
/// owed or the bill is not overdue.
pub fn late_fee(
    rule: &LateFeeRule,
    currency: Currency,
    outstanding_minor: i64,
    due: NaiveDate,
    on: NaiveDate,
) -> i64 {
    if outstanding_minor <= 0 {
        return 0;
    }
    late_fee::with_minimum(
        late_fee::accrued(rule.rates(), outstanding_minor, due, on),
        rule.minimum_minor(currency),
    )
}

/// A bill's late fee due on `on`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeeDue {
    /// Charged and not yet paid (nor waived).
    pub owed: i64,
    /// Accrued on the outstanding principal to `on`, not charged yet.
    pub accruing: i64,
}

impl FeeDue {
    pub fn total(&self) -> i64 {
        self.owed + self.accruing
    }
}

/// What a bill's late fee is on `on` (see the module docs).
pub fn fee_due(
    rule: &LateFeeRule,
    currency: Currency,
    outstanding_minor: i64,
    due: NaiveDate,
    on: NaiveDate,
    fee: &BillFee,
) -> FeeDue {
    let owed = fee.owed().max(0);
    if fee.waived_flag {
        return FeeDue { owed, accruing: 0 };
    }
    let accrued = if outstanding_minor > 0 {
        late_fee::accrued(rule.rates(), outstanding_minor, due, on)
    } else {
        0
    };
    let accruing = if accrued > 0 {
        (late_fee::with_minimum(fee.accrued + accrued, rule.minimum_minor(currency)) - fee.charged)
            .max(0)
    } else {
        0
    };
    FeeDue { owed, accruing }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rule(min: &str) -> LateFeeRule {
        LateFeeRule {
            daily_rate: "0.001".parse().unwrap(),
            earlier_years_daily_rate: "0.003".parse().unwrap(),
            minimum: min.parse().unwrap(),
        }
    }

    #[test]
    fn one_per_mille_a_day_from_the_day_after_the_due_date() {
        let r = rule("0");
        // 256.80 owed, due Nov 10, counted on Nov 10: nothing; Nov 11: 0.2568 -> 0.26
        assert_eq!(
            late_fee(&r, Currency::CNY, 25680, d("2026-11-10"), d("2026-11-10")),
            0
        );
        assert_eq!(
            late_fee(&r, Currency::CNY, 25680, d("2026-11-10"), d("2026-11-11")),
            26
        );
        // 30 days: 7.704 -> 7.70
        assert_eq!(
            late_fee(&r, Currency::CNY, 25680, d("2026-11-10"), d("2026-12-10")),
            770
        );
        // half a fen rounds away from zero: 5.00 x 0.001 = 0.005 -> 0.01
        assert_eq!(
            late_fee(&r, Currency::CNY, 500, d("2026-11-10"), d("2026-11-11")),
            1
        );
    }

    #[test]
    fn earlier_years_cost_more_and_the_minimum_applies() {
        let r = rule("1.00");
        // due 2025-12-20, counted 2026-01-09: Dec 21-31 at 1 per mille (1.10), Jan 1-9 at 3
        // (2.70) on 100.00
        assert_eq!(
            late_fee(&r, Currency::CNY, 10000, d("2025-12-20"), d("2026-01-09")),
            380
        );
        // 0.10 of fee is lifted to the 1.00 minimum
        assert_eq!(
            late_fee(&r, Currency::CNY, 10000, d("2026-11-10"), d("2026-11-11")),
            100
        );
        assert_eq!(
            late_fee(&r, Currency::CNY, 0, d("2026-11-10"), d("2026-12-11")),
            0
        );
        // a currency without minor units
        assert_eq!(
            late_fee(
                &rule("0"),
                Currency::parse("JPY").unwrap(),
                100000,
                d("2026-11-10"),
                d("2026-11-12")
            ),
            200
        );
    }

    #[test]
    fn a_bill_with_fees_charged_owes_them_and_accrues_on_what_is_left() {
        let r = rule("1.00");
        // 1.00 charged on an earlier partial payment (0.30 accrued, lifted), 0.40 of it paid
        let fee = BillFee {
            accrued: 30,
            charged: 100,
            waived: 0,
            paid: 40,
            waived_flag: false,
        };
        // 100.00 left, 5 days late: 0.50 accrued; the bill's total 0.80 is under the minimum
        // already charged, so nothing more is due on it
        let due = fee_due(
            &r,
            Currency::CNY,
            10000,
            d("2026-11-10"),
            d("2026-11-15"),
            &fee,
        );
        assert_eq!(
            due,
            FeeDue {
                owed: 60,
                accruing: 0
            }
        );
        // 20 days: 2.00 accrued, 2.30 in all: 1.30 more than charged
        let due = fee_due(
            &r,
            Currency::CNY,
            10000,
            d("2026-11-10"),
            d("2026-11-30"),
            &fee,
        );
        assert_eq!(
            due,
            FeeDue {
                owed: 60,
                accruing: 130
            }
        );
        assert_eq!(due.total(), 190);
        // waived: nothing accrues, nothing is owed once the waiver wrote it off
        let waived = BillFee {
            waived: 60,
            waived_flag: true,
            ..fee
        };
        assert_eq!(
            fee_due(
                &r,
                Currency::CNY,
                10000,
                d("2026-11-10"),
                d("2026-11-30"),
                &waived
            ),
            FeeDue::default()
        );
    }
}
