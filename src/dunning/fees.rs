//! Late fees (违约金): a daily rate on the overdue amount, from the day after the due date to
//! the day counted, at a higher rate when the bill is from an earlier year, with a minimum,
//! rounded to the currency's minor unit (half away from zero).

use super::policy::LateFeeRule;
use crate::domain::Currency;
use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};

/// The fee in minor units on `outstanding_minor` owed since `due` (exclusive) to `on`
/// (inclusive). Zero when nothing is owed or the bill is not overdue.
pub fn late_fee(
    rule: &LateFeeRule,
    currency: Currency,
    outstanding_minor: i64,
    due: NaiveDate,
    on: NaiveDate,
) -> i64 {
    let days = (on - due).num_days();
    if days <= 0 || outstanding_minor <= 0 {
        return 0;
    }
    let rate = if due.year() < on.year() {
        rule.earlier_years_daily_rate
    } else {
        rule.daily_rate
    };
    let exp = currency.exponent();
    let owed = Decimal::new(outstanding_minor, exp);
    let fee = (owed * rate * Decimal::from(days))
        .round_dp_with_strategy(exp, RoundingStrategy::MidpointAwayFromZero);
    let fee = if fee > Decimal::ZERO && fee < rule.minimum {
        rule.minimum
    } else {
        fee
    };
    use rust_decimal::prelude::ToPrimitive;
    (fee * Decimal::from(10i64.pow(exp)))
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
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
        // half a fen rounds away from zero: 50.00 x 0.001 x 1 = 0.05; 5.00 x 0.001 = 0.005 -> 0.01
        assert_eq!(
            late_fee(&r, Currency::CNY, 500, d("2026-11-10"), d("2026-11-11")),
            1
        );
    }

    #[test]
    fn earlier_years_cost_more_and_the_minimum_applies() {
        let r = rule("1.00");
        // due 2025-12-20, counted 2026-01-09: 20 days at 3 per mille on 100.00 = 6.00
        assert_eq!(
            late_fee(&r, Currency::CNY, 10000, d("2025-12-20"), d("2026-01-09")),
            600
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
}
