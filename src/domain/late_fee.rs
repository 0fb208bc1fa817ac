//! Late-fee arithmetic (违约金), pure: no policy, no storage. The rates and the minimum come
//! from the dunning policy; this module only counts days and multiplies, in minor units, the
//! same way everywhere (matching when it charges a fee, the plan and the partner API when
//! they show one, `verify` when it proves one).
//!
//! - The late days of money due on `due` and paid on `on` run from the day after `due` to `on`
//!   inclusive.
//! - Per day, arrears of the due date's year are "current-year" arrears; from 1 January of
//!   the next year on they are an earlier year's (跨年度) arrears, at the earlier-years rate.
//!   So a period of late days is at most two segments, one per rate.
//! - A segment's fee is `base × rate × days`, in the currency's minor units, rounded half away
//!   from zero. Integers only: `base_minor × rate` is already in minor units.
//! - The minimum applies to a bill's total: a total above zero but under the minimum is
//!   charged as the minimum ([`with_minimum`]).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// The daily rates of one customer class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// On arrears of the year they fell due in.
    pub current_year: Decimal,
    /// On arrears from earlier years.
    pub earlier_years: Decimal,
}

/// Late days at one rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first late day of the segment.
    pub from: NaiveDate,
    /// The last late day (inclusive).
    pub to: NaiveDate,
    pub days: i64,
    pub rate: Decimal,
    /// `base × rate × days` in minor units.
    pub amount_minor: i64,
}

/// `base_minor × rate × days`, rounded half away from zero, in minor units (0 when any
/// factor is zero or negative days; a negative base gives the negative of the positive one).
pub fn accrual(base_minor: i64, rate: Decimal, days: i64) -> i64 {
    if days <= 0 || base_minor == 0 || rate.is_zero() {
        return 0;
    }
    let scale = rate.scale();
    let mantissa = rate.mantissa();
    let num = i128::from(base_minor.abs()) * mantissa.abs() * i128::from(days);
    let den = 10i128.pow(scale);
    // half away from zero on a positive quotient
    let q = (2 * num + den) / (2 * den);
    let q = i64::try_from(q).unwrap_or(i64::MAX);
    if (base_minor < 0) != (mantissa < 0) {
        -q
    } else {
        q
    }
}

/// The late days of `base_minor` due on `due` and paid on `on`, one segment per rate (none
/// when `on` is not after `due`).
pub fn segments(rates: Rates, base_minor: i64, due: NaiveDate, on: NaiveDate) -> Vec<Segment> {
    let mut out = Vec::with_capacity(2);
    if on <= due {
        return out;
    }
    let first = due + chrono::Duration::days(1);
    let year_end = NaiveDate::from_ymd_opt(due.year(), 12, 31).unwrap_or(due);
    let mut push = |from: NaiveDate, to: NaiveDate, rate: Decimal| {
        if to >= from {
            let days = (to - from).num_days() + 1;
            out.push(Segment {
                from,
                to,
                days,
                rate,
                amount_minor: accrual(base_minor, rate, days),
            });
        }
    };
    push(first, on.min(year_end), rates.current_year);
    push(
        first.max(year_end + chrono::Duration::days(1)),
        on,
        rates.earlier_years,
    );
    out
}

/// The fee accrued on `base_minor` from the day after `due` to `on` (no minimum).
pub fn accrued(rates: Rates, base_minor: i64, due: NaiveDate, on: NaiveDate) -> i64 {
    segments(rates, base_minor, due, on)
        .iter()
        .map(|s| s.amount_minor)
        .sum()
}

/// A bill's fee total from what accrued on it: nothing while nothing accrued, at least the
/// minimum once something did.
pub fn with_minimum(accrued_minor: i64, minimum_minor: i64) -> i64 {
    if accrued_minor <= 0 {
        0
    } else {
        accrued_minor.max(minimum_minor)
    }
}

/// A minimum in major units (`1.00`) in minor units of a currency with `exponent` decimals.
pub fn minor_of(amount: Decimal, exponent: u32) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    (amount * Decimal::from(10i64.pow(exponent)))
        .round()
        .to_i64()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn accrual_rounds_half_away_from_zero_in_minor_units() {
        // 256.80 at 1 per mille for 1 day: 0.2568 -> 0.26
        assert_eq!(accrual(25680, dec("0.001"), 1), 26);
        // 5.00 at 1 per mille: 0.005 -> 0.01; 4.99: 0.00499 -> 0.00
        assert_eq!(accrual(500, dec("0.001"), 1), 1);
        assert_eq!(accrual(499, dec("0.001"), 1), 0);
        assert_eq!(accrual(-500, dec("0.001"), 1), -1);
        assert_eq!(accrual(25680, dec("0.001"), 0), 0);
        // a rate written with more digits than needed
        assert_eq!(accrual(10000, dec("0.00200"), 3), 60);
    }

    #[test]
    fn late_days_split_at_the_year_end_of_the_due_date() {
        let r = Rates {
            current_year: dec("0.002"),
            earlier_years: dec("0.003"),
        };
        // due Dec 20, paid Jan 9: Dec 21..31 (11 days) at 2, Jan 1..9 (9 days) at 3 per mille
        let s = segments(r, 10000, d("2025-12-20"), d("2026-01-09"));
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].from, s[0].to, s[0].days),
            (d("2025-12-21"), d("2025-12-31"), 11)
        );
        assert_eq!(s[0].amount_minor, 220);
        assert_eq!(
            (s[1].from, s[1].to, s[1].days),
            (d("2026-01-01"), d("2026-01-09"), 9)
        );
        assert_eq!(s[1].amount_minor, 270);
        assert_eq!(accrued(r, 10000, d("2025-12-20"), d("2026-01-09")), 490);
        // due on Dec 31: every late day is an earlier year's
        let s = segments(r, 10000, d("2025-12-31"), d("2026-01-02"));
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].days, s[0].rate), (2, dec("0.003")));
        // two years later: still one earlier-years segment after the first year
        let s = segments(r, 10000, d("2024-06-30"), d("2026-01-01"));
        assert_eq!(s[0].days, 184);
        assert_eq!(s[1].days, 365 + 1);
        // on time, or paid on the due date: nothing
        assert!(segments(r, 10000, d("2026-11-20"), d("2026-11-20")).is_empty());
        assert!(segments(r, 10000, d("2026-11-20"), d("2026-11-01")).is_empty());
    }

    #[test]
    fn the_minimum_lifts_a_total_that_is_above_zero() {
        assert_eq!(with_minimum(0, 100), 0);
        assert_eq!(with_minimum(26, 100), 100);
        assert_eq!(with_minimum(770, 100), 770);
        assert_eq!(minor_of(dec("1.00"), 2), 100);
        assert_eq!(minor_of(dec("1"), 0), 1);
    }
}
