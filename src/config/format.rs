//! The bank file formats a config can name.

use serde::Serialize;

/// A bank file format, as named in the config (`format = "camt054"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ISO 20022 camt.052 account report.
    Camt052,
    /// ISO 20022 camt.053 statement.
    Camt053,
    /// ISO 20022 camt.054 debit/credit notification.
    Camt054,
    /// SWIFT MT940 customer statement.
    Mt940,
    /// SWIFT MT942 interim transaction report.
    Mt942,
    /// BAI2 cash-management balance report.
    Bai2,
    /// Delimited or fixed-width text laid out as the bank's `[bank.layout]` describes.
    Text,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &[
        "camt052", "camt053", "camt054", "mt940", "mt942", "bai2", "text", "auto",
    ];

    /// `None` for `auto`; an error for an unknown name.
    pub fn parse(name: &str) -> Result<Option<Format>, String> {
        match name
            .trim()
            .to_ascii_lowercase()
            .replace(['.', '_', '-'], "")
            .as_str()
        {
            "camt052" => Ok(Some(Format::Camt052)),
            "camt053" => Ok(Some(Format::Camt053)),
            "camt054" => Ok(Some(Format::Camt054)),
            "mt940" => Ok(Some(Format::Mt940)),
            "mt942" => Ok(Some(Format::Mt942)),
            "bai2" | "bai" => Ok(Some(Format::Bai2)),
            "text" => Ok(Some(Format::Text)),
            "auto" => Ok(None),
            _ => Err(format!(
                "unknown format `{name}` (known: {})",
                Format::NAMES.join(", ")
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Camt052 => "camt052",
            Format::Camt053 => "camt053",
            Format::Camt054 => "camt054",
            Format::Mt940 => "mt940",
            Format::Mt942 => "mt942",
            Format::Bai2 => "bai2",
            Format::Text => "text",
        }
    }

    pub fn is_camt(&self) -> bool {
        matches!(self, Format::Camt052 | Format::Camt053 | Format::Camt054)
    }
}
