//! What matching needs of the late-fee policy: whether fees are collected with payments, the
//! order in which a payment settles fees and principal, and each customer class's rule.
//!
//! The arithmetic is `domain::late_fee`; the rules are the `[dunning]` policy
//! (`config::dunning`), resolved once per class so that the hot path only indexes an array.

use crate::config::dunning::{DunningConfig, LateFeeCollect, LateFeeRule};
use crate::config::{AllocationOrder, Config};

/// The customer classes, in the order of their index (see [`class_index`]).
pub const CLASSES: [&str; 5] = [
    "residential",
    "commercial",
    "industrial",
    "large_industrial",
    "agricultural",
];

/// The index of a class in [`FeePolicy`]'s rules: its place in [`CLASSES`], or 5 for any
/// other name (the rule of classes without their own).
pub fn class_index(class: &str) -> u8 {
    CLASSES
        .iter()
        .position(|c| *c == class)
        .map(|i| i as u8)
        .unwrap_or(CLASSES.len() as u8)
}

/// The late-fee side of allocation.
#[derive(Debug, Clone)]
pub struct FeePolicy {
    /// Fees are charged and collected when money reaches an overdue bill.
    pub collect: bool,
    pub order: AllocationOrder,
    /// One rule per class index.
    rules: Vec<LateFeeRule>,
}

impl Default for FeePolicy {
    /// The built-in policy: fees collected with payments, fee first, the supply rules' rates.
    fn default() -> Self {
        FeePolicy::new(&DunningConfig::default(), AllocationOrder::default())
    }
}

impl FeePolicy {
    pub fn new(dunning: &DunningConfig, order: AllocationOrder) -> FeePolicy {
        let mut rules: Vec<LateFeeRule> = CLASSES
            .iter()
            .map(|c| dunning.for_class(c).late_fee.clone())
            .collect();
        rules.push(dunning.for_class("").late_fee.clone());
        FeePolicy {
            collect: dunning.late_fee_collect == LateFeeCollect::WithPayment,
            order,
            rules,
        }
    }

    /// The policy of a configuration (`[dunning]` and `[matching] allocation_order`).
    pub fn from_config(config: &Config) -> FeePolicy {
        FeePolicy::new(&config.dunning, config.matching.allocation_order)
    }

    /// Fees shown only, never charged (`late_fee_collect = "off"`).
    pub fn without_collection(mut self) -> FeePolicy {
        self.collect = false;
        self
    }

    /// The rule of a class index ([`class_index`]).
    pub fn rule(&self, class: u8) -> &LateFeeRule {
        self.rules
            .get(usize::from(class))
            .unwrap_or(&self.rules[CLASSES.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_their_rules_and_unknown_ones_to_the_default() {
        let p = FeePolicy::default();
        assert!(p.collect);
        assert_eq!(p.order, AllocationOrder::FeeFirst);
        assert_eq!(class_index("residential"), 0);
        assert_eq!(class_index("agricultural"), 4);
        assert_eq!(class_index("martian"), 5);
        assert_eq!(p.rule(0).earlier_years_daily_rate.to_string(), "0.001");
        assert_eq!(p.rule(2).earlier_years_daily_rate.to_string(), "0.003");
        assert_eq!(p.rule(5).daily_rate.to_string(), "0.002");
        assert_eq!(p.rule(200).daily_rate.to_string(), "0.002");
    }
}
