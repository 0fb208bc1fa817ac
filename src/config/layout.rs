//! How a bank's delimited or fixed-width text file is laid out (`[bank.layout]`): the shape the
//! config names and checks; `formats::text` reads files by it.

use crate::domain::Currency;
use chrono::format::{Item, StrftimeItems};
use encoding_rs::Encoding;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The longest line accepted, in bytes (before decoding, without the line end).
pub const MAX_LINE: usize = 64 * 1024;

/// Names an entry column may have (`-` ignores the column).
pub const ENTRY_COLUMNS: &[&str] = &[
    "date",
    "value_date",
    "bank_ref",
    "end_to_end_id",
    "payer_name",
    "payer_account",
    "amount",
    "direction",
    "currency",
    "reference",
    "remittance",
    "additional_info",
    "-",
];

/// Names a header or trailer field may have (`-` ignores the field).
pub const RECORD_FIELDS: &[&str] = &[
    "date",
    "count",
    "total",
    "credit_count",
    "credit_total",
    "debit_count",
    "debit_total",
    "account",
    "-",
];

const DEFAULT_CREDIT: &[&str] = &["C", "CR", "CRDT", "贷"];
const DEFAULT_DEBIT: &[&str] = &["D", "DR", "DBIT", "借"];

/// How a bank's delimited or fixed-width file is laid out (`[bank.layout]` in the config).
///
/// Keys:
/// - `kind` (required): `"delimited"` or `"fixed_width"`.
/// - `encoding`: `"utf-8"` (default), `"gbk"`, `"gb18030"` or another WHATWG label
///   encoding_rs knows (not UTF-16). Bytes that do not decode are an error naming the line.
///   A UTF-8 byte order mark is skipped.
/// - `delimiter`: delimited only, required there: one character, e.g. `"|"`, `","`, `"\t"`.
/// - `quote`: delimited only, optional: one character that may enclose a field (a doubled
///   quote inside is a literal quote). Quoted fields cannot span lines.
/// - `skip_lines`: physical lines skipped before the header (titles). Default 0.
/// - `header`: optional table `{ fields, marker, date_format }`: the first non-blank line after
///   `skip_lines` carries the statement's data. `fields` names its fields like `columns` does
///   (names by position when delimited, `{ name, start, len }` tables when fixed-width), out of
///   `date` (statement date: `created_at`, and the booking date of lines without a `date`
///   column), `count`, `total` (sum of the absolute amounts), `credit_count`, `credit_total`,
///   `debit_count`, `debit_total` (totals in `amount_unit`), `account` (the collection account)
///   and `-`. `marker`: text the line must start with. `date_format`: for its `date`
///   (default: the layout's `date_format`).
/// - `trailer`: optional table like `header`: the last non-blank line. A missing trailer (the
///   last line does not start with `marker`, or has the wrong number of fields) is an error.
///   Its `date` and `account` are checked for form but not used (the statement is already out).
/// - `columns` (required): the entry line's columns. Delimited: names by position; fixed-width:
///   `{ name = "amount", start = 41, len = 12 }` tables (`start` 1-based, `start` and `len`
///   in characters after decoding; text after the last column is ignored, a line too short
///   for a column is an error). Names: `date` (booking date), `value_date`, `bank_ref` (the
///   bank's serial number, 流水号), `end_to_end_id`, `payer_name`, `payer_account`, `amount`
///   (required), `direction`, `currency`, `reference` (户号 or bill id), `remittance` (摘要),
///   `additional_info`, and `-` (ignored). A delimited line with one more field than columns,
///   that extra field empty, is accepted (a trailing delimiter).
/// - `date_format`: chrono format of the dates, default `"%Y%m%d"`.
/// - `amount_unit`: `"major"` (default, `1234.50`) or `"minor"` (`123450` fen/cents).
/// - `currency`: the statement currency; required unless there is a `currency` column (which
///   wins on its lines).
/// - `account`: the collection account of the statement; required unless the header has an
///   `account` field (which wins).
/// - `credit_values`, `debit_values`: values of the `direction` column meaning credit / debit
///   (compared trimmed, ASCII case-insensitively); defaults `C CR CRDT 贷` and `D DR DBIT 借`.
///   Without a `direction` column a signed amount decides (negative: debit); with one, the
///   amount must not be negative. A zero amount is an error.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextLayout {
    pub kind: LayoutKind,
    #[serde(default = "default_encoding")]
    pub encoding: String,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    #[serde(default)]
    pub skip_lines: u32,
    pub header: Option<RecordLine>,
    pub trailer: Option<RecordLine>,
    pub columns: Vec<ColumnSpec>,
    #[serde(default = "default_date_format")]
    pub date_format: String,
    #[serde(default)]
    pub amount_unit: AmountUnit,
    pub currency: Option<Currency>,
    pub account: Option<String>,
    #[serde(default)]
    pub credit_values: Vec<String>,
    #[serde(default)]
    pub debit_values: Vec<String>,
}

fn default_encoding() -> String {
    "utf-8".into()
}
fn default_date_format() -> String {
    "%Y%m%d".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    Delimited,
    FixedWidth,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    #[default]
    Major,
    Minor,
}

/// A header or trailer line.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordLine {
    pub fields: Vec<ColumnSpec>,
    pub marker: Option<String>,
    pub date_format: Option<String>,
}

/// A column: a name (delimited) or a `{ name, start, len }` table (fixed-width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSpec {
    Named(String),
    Fixed(FixedColumn),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FixedColumn {
    pub name: String,
    pub start: Option<usize>,
    pub len: Option<usize>,
}

impl ColumnSpec {
    pub fn name(&self) -> &str {
        match self {
            ColumnSpec::Named(n) => n,
            ColumnSpec::Fixed(f) => &f.name,
        }
    }
}

impl<'de> Deserialize<'de> for ColumnSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ColumnSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name or a table { name, start, len }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ColumnSpec, E> {
                Ok(ColumnSpec::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ColumnSpec, A::Error> {
                FixedColumn::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ColumnSpec::Fixed)
            }
        }
        d.deserialize_any(V)
    }
}

fn one_char(key: &str, v: &str) -> Result<char, String> {
    let mut it = v.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if c != '\n' && c != '\r' => Ok(c),
        _ => Err(format!(
            "{key} `{}` must be one character (not a line end)",
            v.escape_default()
        )),
    }
}

fn check_date_format(key: &str, f: &str) -> Result<(), String> {
    if f.is_empty() || StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Err(format!("{key} `{f}` is not a valid chrono date format"));
    }
    Ok(())
}

fn check_specs(
    key: &str,
    specs: &[ColumnSpec],
    kind: LayoutKind,
    known: &[&str],
) -> Result<(), String> {
    if specs.is_empty() {
        return Err(format!("{key} is empty"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let name = s.name();
        if !known.contains(&name) {
            return Err(format!(
                "{key}[{i}]: unknown name `{name}` (known: {})",
                known.join(", ")
            ));
        }
        if name != "-" {
            if seen.contains(&name) {
                return Err(format!("{key}[{i}]: `{name}` appears twice"));
            }
            seen.push(name);
        }
        match (kind, s) {
            (LayoutKind::Delimited, ColumnSpec::Fixed(_)) => {
                return Err(format!(
                    "{key}[{i}] (`{name}`): kind = \"delimited\" takes names by position, not {{ name, start, len }} tables"
                ))
            }
            (LayoutKind::FixedWidth, ColumnSpec::Named(_)) => {
                return Err(format!(
                    "{key}[{i}] (`{name}`): kind = \"fixed_width\" needs {{ name, start, len }} tables"
                ))
            }
            (LayoutKind::FixedWidth, ColumnSpec::Fixed(f)) => {
                match f.start {
                    None => return Err(format!("{key}[{i}] (`{name}`): a fixed-width column needs `start`")),
                    Some(0) => return Err(format!("{key}[{i}] (`{name}`): `start` is 1-based, 0 is not a position")),
                    Some(s) if s > MAX_LINE => return Err(format!("{key}[{i}] (`{name}`): `start` {s} is beyond the longest line")),
                    _ => {}
                }
                match f.len {
                    None => return Err(format!("{key}[{i}] (`{name}`): a fixed-width column needs `len`")),
                    Some(0) => return Err(format!("{key}[{i}] (`{name}`): `len` must be at least 1")),
                    Some(l) if l > MAX_LINE => return Err(format!("{key}[{i}] (`{name}`): `len` {l} is longer than the longest line")),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl TextLayout {
    /// Checks the layout; the message names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.encoding()?;
        match self.kind {
            LayoutKind::Delimited => {
                let Some(d) = &self.delimiter else {
                    return Err("delimiter: required for kind = \"delimited\"".into());
                };
                let d = one_char("delimiter", d)?;
                if let Some(q) = &self.quote {
                    if one_char("quote", q)? == d {
                        return Err("quote: must differ from the delimiter".into());
                    }
                }
            }
            LayoutKind::FixedWidth => {
                if self.delimiter.is_some() {
                    return Err("delimiter: only for kind = \"delimited\"".into());
                }
                if self.quote.is_some() {
                    return Err("quote: only for kind = \"delimited\"".into());
                }
            }
        }
        check_specs("columns", &self.columns, self.kind, ENTRY_COLUMNS)?;
        if !self.has_column("amount") {
            return Err("columns: there is no `amount` column".into());
        }
        check_date_format("date_format", &self.date_format)?;
        for (key, rec) in [("header", &self.header), ("trailer", &self.trailer)] {
            if let Some(r) = rec {
                check_specs(
                    &format!("{key}.fields"),
                    &r.fields,
                    self.kind,
                    RECORD_FIELDS,
                )?;
                if let Some(f) = &r.date_format {
                    check_date_format(&format!("{key}.date_format"), f)?;
                }
                if r.marker.as_deref() == Some("") {
                    return Err(format!("{key}.marker is empty"));
                }
            }
        }
        if self.currency.is_none() && !self.has_column("currency") {
            return Err("currency: set the statement currency or add a `currency` column".into());
        }
        let header_account = self
            .header
            .as_ref()
            .is_some_and(|h| h.fields.iter().any(|f| f.name() == "account"));
        match &self.account {
            Some(a) if a.trim().is_empty() => return Err("account is empty".into()),
            None if !header_account => {
                return Err(
                    "account: set the collection account or add an `account` field to the header"
                        .into(),
                )
            }
            _ => {}
        }
        if !self.has_column("direction") {
            for (key, v) in [
                ("credit_values", &self.credit_values),
                ("debit_values", &self.debit_values),
            ] {
                if !v.is_empty() {
                    return Err(format!("{key}: only with a `direction` column"));
                }
            }
        }
        for c in self.credit_values() {
            if self
                .debit_values()
                .iter()
                .any(|d| d.eq_ignore_ascii_case(c))
            {
                return Err(format!("credit_values and debit_values both hold `{c}`"));
            }
        }
        Ok(())
    }

    pub(crate) fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name() == name)
    }

    pub(crate) fn encoding(&self) -> Result<&'static Encoding, String> {
        let enc = Encoding::for_label(self.encoding.trim().as_bytes()).ok_or_else(|| {
            format!(
                "encoding `{}` is not known (use utf-8, gbk or gb18030)",
                self.encoding
            )
        })?;
        if enc == encoding_rs::UTF_16LE
            || enc == encoding_rs::UTF_16BE
            || enc == encoding_rs::REPLACEMENT
        {
            return Err(format!(
                "encoding `{}` is not supported (lines are split on the byte \\n)",
                self.encoding
            ));
        }
        Ok(enc)
    }

    pub(crate) fn credit_values(&self) -> Vec<&str> {
        if self.credit_values.is_empty() {
            DEFAULT_CREDIT.to_vec()
        } else {
            self.credit_values.iter().map(|s| s.trim()).collect()
        }
    }

    pub(crate) fn debit_values(&self) -> Vec<&str> {
        if self.debit_values.is_empty() {
            DEFAULT_DEBIT.to_vec()
        } else {
            self.debit_values.iter().map(|s| s.trim()).collect()
        }
    }
}
