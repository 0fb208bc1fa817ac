//! Delimited and fixed-width text files (e.g. Chinese banks' daily 对账文件), laid out as the
//! bank's `[bank.layout]` table in the config describes.
//!
//! A file is one statement: optional skipped lines, an optional header line, one line per
//! payment, an optional trailer line (the last non-blank line). The reader streams the file
//! line by line (one line of look-ahead when there is a trailer) and never holds it whole; a
//! line longer than [`MAX_LINE`] bytes is an error. Blank lines are skipped anywhere.
//!
//! Counts and totals the header or trailer declare are checked against the lines before
//! `StatementEnd`. The header's go into the `Statement` event's `declared`; the trailer comes
//! after the entries, so its values are checked but cannot be in the already-yielded event.
//!
//! ```toml
//! [bank.layout]
//! kind = "delimited"
//! encoding = "gbk"
//! delimiter = "|"
//! header = { fields = ["date", "count", "total"] }
//! columns = ["date", "bank_ref", "reference", "payer_name", "amount", "remittance"]
//! currency = "CNY"
//! account = "1100000000000000001"
//! ```

use super::{Event, FileHeader, Format, ParseError};
use crate::domain::{Currency, Direction, Entry, EntryStatus, Money, Statement, StatementTotals};
use chrono::format::{Item, StrftimeItems};
use chrono::NaiveDate;
use encoding_rs::{DecoderResult, Encoding};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use std::collections::VecDeque;
use std::fmt;
use std::io::BufRead;

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

    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name() == name)
    }

    fn encoding(&self) -> Result<&'static Encoding, String> {
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

    fn credit_values(&self) -> Vec<&str> {
        if self.credit_values.is_empty() {
            DEFAULT_CREDIT.to_vec()
        } else {
            self.credit_values.iter().map(|s| s.trim()).collect()
        }
    }

    fn debit_values(&self) -> Vec<&str> {
        if self.debit_values.is_empty() {
            DEFAULT_DEBIT.to_vec()
        } else {
            self.debit_values.iter().map(|s| s.trim()).collect()
        }
    }
}

/// Splits a delimited line. Quotes open a field only at its start (after blanks).
fn split_delimited(line: &str, delim: char, quote: Option<char>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if Some(c) == quote {
                if chars.peek() == Some(&c) {
                    cur.push(c);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
        } else if Some(c) == quote && cur.trim().is_empty() {
            cur.clear();
            in_quotes = true;
        } else {
            cur.push(c);
        }
    }
    if in_quotes {
        return Err("a quoted field is not closed before the end of the line".into());
    }
    out.push(cur);
    Ok(out)
}

fn parse_amount(text: &str, unit: AmountUnit, ccy: Currency) -> Result<Money, String> {
    match unit {
        AmountUnit::Major => Money::parse(text, ccy).map_err(|e| e.to_string()),
        AmountUnit::Minor => text
            .parse::<i64>()
            .map(|m| Money::from_minor(m, ccy))
            .map_err(|_| format!("`{text}` is not a whole amount in minor units (fen/cents)")),
    }
}

fn parse_date(text: &str, fmt: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, fmt)
        .map_err(|e| format!("`{text}` is not a date in the format `{fmt}` ({e})"))
}

#[derive(Default)]
struct Computed {
    entries: u64,
    sum: Decimal,
    credits: u64,
    credit_sum: Decimal,
    debits: u64,
    debit_sum: Decimal,
}

/// A count or total declared by the header or trailer.
struct Declared {
    loc: String,
    what: &'static str,
    field: String,
    count: Option<u64>,
    amount: Option<Decimal>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Body,
    Done,
}

/// Streaming reader: yields `File`, `Statement`, each `Entry`, `StatementEnd`.
pub struct TextReader<R> {
    reader: R,
    file: String,
    layout: TextLayout,
    invalid: Option<String>,
    enc: &'static Encoding,
    buf: Vec<u8>,
    /// Physical lines read so far.
    line_no: u64,
    phase: Phase,
    queue: VecDeque<Event>,
    lookahead: Option<(u64, String)>,
    header_date: Option<NaiveDate>,
    account: Option<String>,
    declared: Vec<Declared>,
    computed: Computed,
    entry_seq: u32,
}

impl<R: BufRead> TextReader<R> {
    /// A layout that does not validate makes the first item an error.
    pub fn new(reader: R, file: &str, layout: &TextLayout) -> Self {
        let invalid = layout.validate().err();
        TextReader {
            reader,
            file: file.to_string(),
            layout: layout.clone(),
            invalid,
            enc: layout.encoding().unwrap_or(encoding_rs::UTF_8),
            buf: Vec::new(),
            line_no: 0,
            phase: Phase::Start,
            queue: VecDeque::new(),
            lookahead: None,
            header_date: None,
            account: layout.account.clone(),
            declared: Vec::new(),
            computed: Computed::default(),
            entry_seq: 0,
        }
    }

    fn err(&self, loc: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError::new(&self.file, loc, reason)
    }

    /// Reads one physical line into `buf` (without `\n`); `false` at the end of the file.
    fn read_raw(&mut self) -> Result<bool, ParseError> {
        self.buf.clear();
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::io(&self.file, &e)),
            };
            if avail.is_empty() {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                self.line_no += 1;
                return Ok(true);
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if self.buf.len() + take > MAX_LINE {
                let n = self.line_no + 1;
                return Err(self.err(
                    format!("line {n}"),
                    format!("the line is longer than {MAX_LINE} bytes"),
                ));
            }
            self.buf.extend_from_slice(&avail[..take]);
            self.reader.consume(take + usize::from(done));
            if done {
                self.line_no += 1;
                return Ok(true);
            }
        }
    }

    /// The next non-blank line, decoded, with its number.
    fn next_line(&mut self) -> Result<Option<(u64, String)>, ParseError> {
        loop {
            if !self.read_raw()? {
                return Ok(None);
            }
            let mut bytes = &self.buf[..];
            if let Some(b) = bytes.strip_suffix(b"\r") {
                bytes = b;
            }
            if self.line_no == 1 && self.enc == encoding_rs::UTF_8 {
                if let Some(b) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                    bytes = b;
                }
            }
            let mut dec = self.enc.new_decoder_without_bom_handling();
            let cap = dec
                .max_utf8_buffer_length_without_replacement(bytes.len())
                .unwrap_or(usize::MAX);
            let mut s = String::with_capacity(cap.min(4 * MAX_LINE + 16));
            let (res, read) = dec.decode_to_string_without_replacement(bytes, &mut s, true);
            match res {
                DecoderResult::InputEmpty => {}
                DecoderResult::Malformed(bad, extra) => {
                    let at = read.saturating_sub(bad as usize + extra as usize);
                    return Err(self.err(
                        format!("line {}", self.line_no),
                        format!(
                            "the line is not valid {} (undecodable bytes at byte {})",
                            self.enc.name(),
                            at + 1
                        ),
                    ));
                }
                DecoderResult::OutputFull => {
                    return Err(self.err(
                        format!("line {}", self.line_no),
                        "the line cannot be decoded",
                    ))
                }
            }
            if !s.trim().is_empty() {
                return Ok(Some((self.line_no, s)));
            }
        }
    }

    /// The named values of a line's fields (`-` left out), trimmed.
    fn fields(
        &self,
        loc: &str,
        line: &str,
        specs: &[ColumnSpec],
        what: &str,
    ) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::with_capacity(specs.len());
        match self.layout.kind {
            LayoutKind::Delimited => {
                let delim = self
                    .layout
                    .delimiter
                    .as_deref()
                    .and_then(|d| d.chars().next())
                    .unwrap_or('|');
                let quote = self.layout.quote.as_deref().and_then(|q| q.chars().next());
                let mut vals = split_delimited(line, delim, quote).map_err(|e| self.err(loc, e))?;
                if vals.len() == specs.len() + 1 && vals.last().is_some_and(|v| v.trim().is_empty())
                {
                    vals.pop();
                }
                if vals.len() != specs.len() {
                    return Err(self.err(
                        loc,
                        format!(
                            "the line has {} field(s) separated by `{delim}`, the layout's `{what}` lists {}",
                            vals.len(),
                            specs.len()
                        ),
                    ));
                }
                for (s, v) in specs.iter().zip(vals) {
                    if s.name() != "-" {
                        out.push((s.name().to_string(), v.trim().to_string()));
                    }
                }
            }
            LayoutKind::FixedWidth => {
                let idx: Vec<usize> = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(line.len()))
                    .collect();
                let nchars = idx.len() - 1;
                for s in specs {
                    let ColumnSpec::Fixed(f) = s else { continue };
                    let start = f.start.unwrap_or(1).max(1) - 1;
                    let end = start.saturating_add(f.len.unwrap_or(1));
                    if end > nchars {
                        return Err(self.err(
                            format!("{loc}, column `{}`", f.name),
                            format!(
                                "the line is {nchars} characters long, too short for `{}` (characters {}-{end})",
                                f.name,
                                start + 1
                            ),
                        ));
                    }
                    if f.name != "-" {
                        out.push((
                            f.name.clone(),
                            line[idx[start]..idx[end]].trim().to_string(),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Parses the header or trailer line into `declared` (and the date and account).
    fn parse_record(&mut self, n: u64, line: &str, header: bool) -> Result<(), ParseError> {
        let what = if header { "header" } else { "trailer" };
        let rec = if header {
            &self.layout.header
        } else {
            &self.layout.trailer
        };
        let Some(rec) = rec.clone() else {
            return Ok(());
        };
        let loc = format!("line {n} ({what})");
        if let Some(m) = &rec.marker {
            if !line.starts_with(m.as_str()) {
                let why = if header {
                    format!("the header line does not start with `{m}`")
                } else {
                    format!("the last line does not start with the trailer's `{m}`: the trailer is missing (truncated file?)")
                };
                return Err(self.err(loc, why));
            }
        }
        let fields = self
            .fields(&loc, line, &rec.fields, &format!("{what}.fields"))
            .map_err(|mut e| {
                if !header && rec.marker.is_none() {
                    e.reason.push_str(" (is the trailer missing?)");
                }
                e
            })?;
        let ccy = self.layout.currency.unwrap_or(Currency::XXX);
        for (name, v) in fields {
            if v.is_empty() {
                continue;
            }
            let floc = format!("{loc}, field `{name}`");
            match name.as_str() {
                "date" => {
                    let f = rec
                        .date_format
                        .as_deref()
                        .unwrap_or(&self.layout.date_format);
                    let d = parse_date(&v, f).map_err(|e| self.err(&floc, e))?;
                    if header {
                        self.header_date = Some(d);
                    }
                }
                "account" => {
                    if header {
                        self.account = Some(v);
                    }
                }
                "count" | "credit_count" | "debit_count" => {
                    let c: u64 = v
                        .parse()
                        .map_err(|_| self.err(&floc, format!("`{v}` is not a count of records")))?;
                    self.declared.push(Declared {
                        loc: floc,
                        what,
                        field: name,
                        count: Some(c),
                        amount: None,
                    });
                }
                _ => {
                    let m = parse_amount(&v, self.layout.amount_unit, ccy)
                        .map_err(|e| self.err(&floc, e))?;
                    self.declared.push(Declared {
                        loc: floc,
                        what,
                        field: name,
                        count: None,
                        amount: Some(m.amount()),
                    });
                }
            }
        }
        Ok(())
    }

    fn parse_entry(&mut self, n: u64, line: &str) -> Result<Entry, ParseError> {
        let loc = format!("line {n}");
        let fields = self.fields(&loc, line, &self.layout.columns, "columns")?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let cloc = |c: &str| format!("line {n}, column `{c}`");
        let currency = match get("currency") {
            Some(c) => Currency::parse(c).map_err(|e| self.err(cloc("currency"), e.to_string()))?,
            None => self
                .layout
                .currency
                .ok_or_else(|| self.err(cloc("currency"), "the currency is empty"))?,
        };
        let raw = get("amount").ok_or_else(|| self.err(cloc("amount"), "the amount is empty"))?;
        let signed = parse_amount(raw, self.layout.amount_unit, currency)
            .map_err(|e| self.err(cloc("amount"), e))?;
        if signed.is_zero() {
            return Err(self.err(cloc("amount"), format!("the amount `{raw}` is zero")));
        }
        let amount = if signed.is_positive() {
            signed
        } else {
            signed.negated()
        };
        let direction = if self.layout.has_column("direction") {
            if !signed.is_positive() {
                return Err(self.err(
                    cloc("amount"),
                    format!(
                        "the amount `{raw}` is negative but the `direction` column gives the sign"
                    ),
                ));
            }
            let d = get("direction").unwrap_or("");
            if self
                .layout
                .credit_values()
                .iter()
                .any(|c| c.eq_ignore_ascii_case(d))
            {
                Direction::Credit
            } else if self
                .layout
                .debit_values()
                .iter()
                .any(|c| c.eq_ignore_ascii_case(d))
            {
                Direction::Debit
            } else {
                return Err(self.err(
                    cloc("direction"),
                    format!(
                        "`{d}` is neither a credit value ({}) nor a debit value ({})",
                        self.layout.credit_values().join(" "),
                        self.layout.debit_values().join(" ")
                    ),
                ));
            }
        } else if signed.is_positive() {
            Direction::Credit
        } else {
            Direction::Debit
        };
        let date = |col: &str| -> Result<Option<NaiveDate>, ParseError> {
            get(col)
                .map(|v| {
                    parse_date(v, &self.layout.date_format).map_err(|e| self.err(cloc(col), e))
                })
                .transpose()
        };
        let booking_date = date("date")?.or(self.header_date);
        let value_date = date("value_date")?;
        let s = |col: &str| get(col).map(str::to_string);

        let file = &self.file;
        let overflow = || ParseError::new(file, &loc, "the file's totals overflow");
        let c = &mut self.computed;
        let a = amount.amount();
        c.entries += 1;
        c.sum = c.sum.checked_add(a).ok_or_else(overflow)?;
        match direction {
            Direction::Credit => {
                c.credits += 1;
                c.credit_sum = c.credit_sum.checked_add(a).ok_or_else(overflow)?;
            }
            Direction::Debit => {
                c.debits += 1;
                c.debit_sum = c.debit_sum.checked_add(a).ok_or_else(overflow)?;
            }
        }
        self.entry_seq = self
            .entry_seq
            .checked_add(1)
            .ok_or_else(|| ParseError::new(&self.file, &loc, "too many lines"))?;
        Ok(Entry {
            entry_seq: self.entry_seq,
            tx_seq: 1,
            tx_count: 1,
            amount,
            currency,
            direction,
            reversal: false,
            status: EntryStatus::Booked,
            booking_date,
            value_date,
            bank_ref: s("bank_ref"),
            entry_ref: s("bank_ref"),
            end_to_end_id: s("end_to_end_id"),
            tx_id: None,
            payer_name: s("payer_name"),
            payer_account: s("payer_account"),
            reference: s("reference"),
            remittance: s("remittance"),
            additional_info: s("additional_info"),
            return_reason: None,
            instructed_amount: None,
            bank_tx_code: None,
        })
    }

    /// What the header and trailer declare must be what the lines add up to.
    fn check_totals(&self) -> Result<(), ParseError> {
        let c = &self.computed;
        for d in &self.declared {
            let (count, sum, what) = match d.field.as_str() {
                "count" | "total" => (c.entries, c.sum, "records"),
                "credit_count" | "credit_total" => (c.credits, c.credit_sum, "credit records"),
                _ => (c.debits, c.debit_sum, "debit records"),
            };
            if let Some(n) = d.count {
                if n != count {
                    return Err(self.err(
                        &d.loc,
                        format!("the {} declares {n} {what}, the file has {count}", d.what),
                    ));
                }
            }
            if let Some(a) = d.amount {
                if a != sum {
                    return Err(self.err(
                        &d.loc,
                        format!(
                            "the {} declares a total of {a}, the {what} add up to {sum}",
                            d.what
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn totals(&self) -> StatementTotals {
        let mut t = StatementTotals::default();
        for d in &self.declared {
            match d.field.as_str() {
                "count" => t.entry_count = d.count,
                "total" => t.sum = d.amount,
                "credit_count" => t.credit_count = d.count,
                "credit_total" => t.credit_sum = d.amount,
                "debit_count" => t.debit_count = d.count,
                "debit_total" => t.debit_sum = d.amount,
                _ => {}
            }
        }
        t
    }

    fn start(&mut self) -> Result<(), ParseError> {
        if let Some(msg) = &self.invalid {
            return Err(self.err("layout", format!("invalid [bank.layout]: {msg}")));
        }
        let mut skipped = 0;
        for _ in 0..self.layout.skip_lines {
            if !self.read_raw()? {
                break;
            }
            skipped += 1;
        }
        let Some((n, first)) = self.next_line()? else {
            return Err(if skipped == 0 {
                self.err("start of file", "the file is empty")
            } else {
                self.err(
                    format!("line {}", self.line_no + 1),
                    "the file has nothing after the skipped lines",
                )
            });
        };
        if self.layout.header.is_some() {
            self.parse_record(n, &first, true)?;
        } else {
            self.lookahead = Some((n, first));
        }
        let created_at = self.header_date.map(|d| d.format("%Y-%m-%d").to_string());
        let Some(account) = self.account.clone() else {
            let at = if self.layout.header.is_some() {
                format!("line {n} (header)")
            } else {
                "start of file".into()
            };
            return Err(self.err(
                at,
                "the statement has no account (the header's `account` is empty)",
            ));
        };
        self.queue.push_back(Event::File(
            Format::Text,
            FileHeader {
                file_id: None,
                created_at: created_at.clone(),
                version: None,
            },
        ));
        self.queue.push_back(Event::Statement(Statement {
            statement_id: None,
            account,
            currency: self.layout.currency,
            created_at,
            opening_balance: None,
            closing_balance: None,
            declared: self.totals(),
            entries: Vec::new(),
        }));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Event>, ParseError> {
        match self.phase {
            Phase::Done => Ok(None),
            Phase::Start => {
                self.start()?;
                self.phase = Phase::Body;
                Ok(self.queue.pop_front())
            }
            Phase::Body => {
                let cur = match self.lookahead.take() {
                    Some(l) => Some(l),
                    None => self.next_line()?,
                };
                let Some((n, line)) = cur else {
                    if self.layout.trailer.is_some() {
                        return Err(self.err(
                            format!("line {}", self.line_no),
                            "the file ends without its trailer line (truncated file?)",
                        ));
                    }
                    self.check_totals()?;
                    self.phase = Phase::Done;
                    return Ok(Some(Event::StatementEnd));
                };
                if self.layout.trailer.is_some() {
                    match self.next_line()? {
                        None => {
                            self.parse_record(n, &line, false)?;
                            self.check_totals()?;
                            self.phase = Phase::Done;
                            return Ok(Some(Event::StatementEnd));
                        }
                        Some(next) => self.lookahead = Some(next),
                    }
                }
                self.parse_entry(n, &line).map(|e| Some(Event::Entry(e)))
            }
        }
    }
}

impl<R: BufRead> Iterator for TextReader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(ev) = self.queue.pop_front() {
            return Some(Ok(ev));
        }
        match self.step() {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => {
                self.phase = Phase::Done;
                None
            }
            Err(e) => {
                self.phase = Phase::Done;
                self.queue.clear();
                self.lookahead = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
