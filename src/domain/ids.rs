//! Identifiers from the billing system: customer account numbers and bill ids.
//!
//! Each keeps the text the billing system used (for display and exports) and a normalized
//! key (trimmed, upper-case, spaces and dashes removed) that references are compared by.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} `{value}` may contain only letters, digits, spaces, dashes, `/`, `.` and `_` (max 64)")]
    BadChars { kind: &'static str, value: String },
    #[error("`{0}` is not a customer class (residential, commercial, industrial, large_industrial, agricultural)")]
    BadClass(String),
}

/// Normalizes a reference for comparison: trim, upper-case, drop spaces and dashes.
pub fn normalize_key(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(|c| c.to_uppercase())
        .collect()
}

/// Masks what may be a bank account or card number in text meant for logs: in every run of
/// 8 or more letters and digits holding at least 6 digits, all but the last 4 characters
/// become `*` (`6222021234567890123` -> `***************0123`).
pub fn mask_accounts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let n = run.chars().count();
        if n >= 8 && run.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.extend(std::iter::repeat_n('*', n - 4));
            out.extend(run.chars().skip(n - 4));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn check(kind: &'static str, s: &str) -> Result<String, IdError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if t.len() > 64
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '/' | '.' | '_'))
    {
        return Err(IdError::BadChars {
            kind,
            value: s.to_string(),
        });
    }
    if normalize_key(t).is_empty() {
        return Err(IdError::Empty { kind });
    }
    Ok(t.to_string())
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check($kind, s).map($name)
            }
            /// The normalized key references are matched against.
            pub fn key(&self) -> String {
                normalize_key(&self.0)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

id_type!(AccountNo, "account number");
id_type!(BillId, "bill id");

/// Tariff class of a customer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerClass {
    Residential,
    Commercial,
    Industrial,
    LargeIndustrial,
    Agricultural,
}

impl CustomerClass {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "residential" => Self::Residential,
            "commercial" => Self::Commercial,
            "industrial" => Self::Industrial,
            "large_industrial" => Self::LargeIndustrial,
            "agricultural" => Self::Agricultural,
            _ => return Err(IdError::BadClass(s.to_string())),
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Residential => "residential",
            Self::Commercial => "commercial",
            Self::Industrial => "industrial",
            Self::LargeIndustrial => "large_industrial",
            Self::Agricultural => "agricultural",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_ignore_case_spaces_and_dashes() {
        let a = BillId::parse(" inv-2026 10-0001 ").unwrap();
        assert_eq!(a.as_str(), "inv-2026 10-0001");
        assert_eq!(a.key(), "INV2026100001");
        assert_eq!(normalize_key(" 3100-0000 07"), "3100000007");
    }

    #[test]
    fn account_numbers_are_masked_in_log_text() {
        assert_eq!(
            mask_accounts("payer 6222021234567890123 (DE89370400440532013000), bill B2026-10"),
            "payer ***************0123 (******************3000), bill B2026-10"
        );
        assert_eq!(
            mask_accounts("line 12, element Amt"),
            "line 12, element Amt"
        );
    }

    #[test]
    fn rejects_empty_and_strange_ids() {
        assert!(AccountNo::parse("  ").is_err());
        assert!(AccountNo::parse("--").is_err());
        assert!(AccountNo::parse("31000;DROP").is_err());
        assert!(BillId::parse("户号").is_err());
    }

    #[test]
    fn classes() {
        assert_eq!(
            CustomerClass::parse("Large_Industrial").unwrap(),
            CustomerClass::LargeIndustrial
        );
        assert!(CustomerClass::parse("household").is_err());
    }

    proptest! {
        #[test]
        fn key_is_idempotent(s in "[a-zA-Z0-9 -]{1,40}") {
            let k = normalize_key(&s);
            prop_assert_eq!(normalize_key(&k), k);
        }
    }
}
