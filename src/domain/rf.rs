//! ISO 11649 structured creditor reference (`RF` + two check digits + up to 21 alphanumerics).
//!
//! The check is ISO 7064 MOD 97-10, as for IBANs: move `RF` and the check digits to the end,
//! turn letters into numbers (A=10 .. Z=35), and the remainder modulo 97 must be 1.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RfError {
    #[error("`{0}` does not start with RF and two check digits")]
    NotRf(String),
    #[error("`{0}` has a reference part that is empty, too long (max 21) or not alphanumeric")]
    BadBody(String),
    #[error("`{0}` fails the ISO 11649 check digits")]
    CheckDigits(String),
}

/// A verified RF creditor reference; `body()` is the wrapped reference (for us, a bill id).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RfReference(String);

fn mod97(digits_of: impl Iterator<Item = u8>) -> u32 {
    let mut rem: u32 = 0;
    for c in digits_of {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => 0,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

impl RfReference {
    /// Parses after normalizing (upper-case, spaces and dashes removed) and verifies check digits.
    pub fn parse(s: &str) -> Result<Self, RfError> {
        let n = super::normalize_key(s);
        let b = n.as_bytes();
        if b.len() < 5 || &b[..2] != b"RF" || !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
            return Err(RfError::NotRf(s.to_string()));
        }
        let body = &b[4..];
        if body.is_empty() || body.len() > 21 || !body.iter().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RfError::BadBody(s.to_string()));
        }
        let rearranged = body.iter().chain(b[..4].iter()).copied();
        if mod97(rearranged) != 1 {
            return Err(RfError::CheckDigits(s.to_string()));
        }
        Ok(RfReference(n))
    }

    /// Wraps a reference body (e.g. a bill id) with freshly computed check digits.
    pub fn wrap(body: &str) -> Result<Self, RfError> {
        let b = super::normalize_key(body);
        if b.is_empty() || b.len() > 21 || !b.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RfError::BadBody(body.to_string()));
        }
        let rem = mod97(b.bytes().chain(*b"RF00"));
        let check = 98 - rem;
        Ok(RfReference(format!("RF{check:02}{b}")))
    }

    /// The reference without `RF` and check digits.
    pub fn body(&self) -> &str {
        &self.0[4..]
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RfReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RfReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RfReference({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_good_references_from_the_standard() {
        // Example from ISO 11649 / EPC guidance.
        let r = RfReference::parse("RF18 5390 0754 7034").unwrap();
        assert_eq!(r.body(), "539007547034");
        assert!(RfReference::parse("RF18539007547034").is_ok());
        assert!(RfReference::parse("rf18-5390-0754-7034").is_ok());
    }

    #[test]
    fn rejects_wrong_check_digits_and_shapes() {
        assert!(matches!(
            RfReference::parse("RF19539007547034"),
            Err(RfError::CheckDigits(_))
        ));
        assert!(RfReference::parse("RF18").is_err());
        assert!(RfReference::parse("XX18539007547034").is_err());
        assert!(RfReference::parse("RF181234567890123456789012").is_err());
    }

    #[test]
    fn wrap_produces_the_standard_check_digits() {
        assert_eq!(
            RfReference::wrap("539007547034").unwrap().as_str(),
            "RF18539007547034"
        );
    }

    proptest! {
        #[test]
        fn wrap_then_parse_roundtrips(body in "[A-Z0-9]{1,21}") {
            let r = RfReference::wrap(&body).unwrap();
            let back = RfReference::parse(r.as_str()).unwrap();
            prop_assert_eq!(back.body(), body.as_str());
        }

        #[test]
        fn a_single_changed_digit_is_caught(body in "[0-9]{4,21}", pos in 0usize..21) {
            let r = RfReference::wrap(&body).unwrap();
            let mut s = r.as_str().as_bytes().to_vec();
            let i = 4 + pos % body.len();
            s[i] = if s[i] == b'9' { b'0' } else { s[i] + 1 };
            let changed = String::from_utf8(s).unwrap();
            prop_assert!(RfReference::parse(&changed).is_err());
        }
    }
}
