//! Business days: Monday to Friday, minus listed holidays, plus listed make-up working days
//! (调休: a weekend day worked in exchange for a longer holiday).

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

impl Calendar {
    pub fn new(
        holidays: impl IntoIterator<Item = NaiveDate>,
        workdays: impl IntoIterator<Item = NaiveDate>,
    ) -> Calendar {
        Calendar {
            holidays: holidays.into_iter().collect(),
            workdays: workdays.into_iter().collect(),
        }
    }

    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The last business day before `d`.
    pub fn previous_business_day(&self, d: NaiveDate) -> NaiveDate {
        let mut p = d.pred_opt().unwrap_or(d);
        // a year of holidays in a row is not a calendar: stop looking after 366 days
        for _ in 0..366 {
            if self.is_business_day(p) {
                return p;
            }
            p = p.pred_opt().unwrap_or(p);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekends_holidays_and_make_up_days() {
        // National Day 2026: Oct 1-7 off, Sunday Sep 27 and Saturday Oct 10 worked
        let c = Calendar::new(
            (1..=7).map(|i| d(&format!("2026-10-0{i}"))),
            [d("2026-09-27"), d("2026-10-10")],
        );
        assert!(c.is_business_day(d("2026-09-30")));
        assert!(!c.is_business_day(d("2026-10-05")));
        assert!(c.is_business_day(d("2026-10-10")), "a Saturday worked");
        assert!(!c.is_business_day(d("2026-10-11")));
        assert_eq!(c.previous_business_day(d("2026-10-08")), d("2026-09-30"));
        assert_eq!(c.previous_business_day(d("2026-10-12")), d("2026-10-10"));
        assert_eq!(c.previous_business_day(d("2026-09-28")), d("2026-09-27"));
    }
}
