//! Money: an exact decimal amount in a currency. Never floating point.
//!
//! The database keeps amounts as integers in the currency's minor unit (fen, cents); the
//! conversion lives here and nowhere else.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("`{0}` is not an ISO 4217 currency code (three upper-case letters)")]
    BadCurrency(String),
    #[error("`{0}` is not a decimal amount")]
    BadAmount(String),
    #[error("{amount} has more decimal places than {currency} allows ({exponent})")]
    TooPrecise {
        amount: Decimal,
        currency: Currency,
        exponent: u32,
    },
    #[error("{0} is too large")]
    Overflow(Decimal),
}

/// An ISO 4217 alphabetic currency code, e.g. `CNY`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");
    /// ISO 4217's "no currency": never equal to a payment's currency.
    pub const XXX: Currency = Currency(*b"XXX");

    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_uppercase()) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(MoneyError::BadCurrency(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of decimal places of the minor unit (ISO 4217). Two unless listed.
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}
impl std::str::FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

/// An exact amount of money in one currency, held in its minor unit.
///
/// Amounts are signed: a debit is negative where a ledger needs signs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// From a decimal amount; fails when it has more decimals than the currency allows.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exp = currency.exponent();
        let normalized = amount.normalize();
        if normalized.scale() > exp {
            return Err(MoneyError::TooPrecise {
                amount,
                currency,
                exponent: exp,
            });
        }
        let scaled = amount
            .checked_mul(Decimal::from(10i64.pow(exp)))
            .ok_or(MoneyError::Overflow(amount))?;
        let minor: i64 = scaled
            .trunc()
            .try_into()
            .map_err(|_| MoneyError::Overflow(amount))?;
        Ok(Money { minor, currency })
    }

    /// Parses a decimal string such as `1234.50` (no thousands separators, `.` as the point).
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let t = amount.trim();
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        {
            return Err(MoneyError::BadAmount(amount.to_string()));
        }
        let d: Decimal = t
            .parse()
            .map_err(|_| MoneyError::BadAmount(amount.to_string()))?;
        Money::from_decimal(d, currency)
    }

    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }
    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }
    pub fn minor(&self) -> i64 {
        self.minor
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }
    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }
    pub fn negated(&self) -> Money {
        Money {
            minor: -self.minor,
            currency: self.currency,
        }
    }
    /// Same currency required; `None` on a currency mismatch or overflow.
    pub fn checked_add(&self, other: Money) -> Option<Money> {
        (self.currency == other.currency).then_some(())?;
        Some(Money {
            minor: self.minor.checked_add(other.minor)?,
            currency: self.currency,
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

/// Formats minor units as a decimal string with exactly the currency's decimals.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    Decimal::new(minor, currency.exponent()).to_string()
}

/// Formats minor units of a currency given by its code (exponent 2 when the code is unknown).
pub fn money_text(minor: i64, currency: &str) -> String {
    let exp = Currency::parse(currency).map(|c| c.exponent()).unwrap_or(2);
    Decimal::new(minor, exp).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_keeps_exact_minor_units() {
        let m = Money::parse("1234.50", Currency::CNY).unwrap();
        assert_eq!(m.minor(), 123450);
        assert_eq!(m.amount().to_string(), "1234.50");
        assert_eq!(Money::parse("0.1", Currency::CNY).unwrap().minor(), 10);
        assert_eq!(
            Money::parse("7", Currency::parse("JPY").unwrap())
                .unwrap()
                .minor(),
            7
        );
    }

    #[test]
    fn rejects_too_many_decimals_and_garbage() {
        assert!(matches!(
            Money::parse("1.005", Currency::CNY),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(Money::parse("1,00", Currency::CNY).is_err());
        assert!(Money::parse("", Currency::CNY).is_err());
        assert!(Money::parse("1e5", Currency::CNY).is_err());
        assert!(Money::parse("1.5", Currency::parse("JPY").unwrap()).is_err());
        // trailing zeros beyond the exponent are fine: 1.500 CNY is 1.50
        assert_eq!(Money::parse("1.500", Currency::CNY).unwrap().minor(), 150);
    }

    #[test]
    fn currency_codes() {
        assert!(Currency::parse("cny").is_err());
        assert!(Currency::parse("CN").is_err());
        assert_eq!(Currency::parse(" EUR ").unwrap(), Currency::EUR);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn add_refuses_mixed_currencies() {
        let a = Money::from_minor(100, Currency::CNY);
        let b = Money::from_minor(100, Currency::EUR);
        assert!(a.checked_add(b).is_none());
        assert_eq!(a.checked_add(a).unwrap().minor(), 200);
    }

    proptest! {
        #[test]
        fn minor_roundtrips_through_text(minor in -10_000_000_000i64..10_000_000_000i64) {
            let m = Money::from_minor(minor, Currency::CNY);
            let text = format_minor(minor, Currency::CNY);
            prop_assert_eq!(Money::parse(&text, Currency::CNY).unwrap(), m);
        }
    }
}
