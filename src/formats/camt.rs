//! ISO 20022 camt.052 / camt.053 / camt.054, versions 001.01 to 001.08 (and later ones that
//! keep the same element names), read as a stream with quick-xml.
//!
//! Elements are matched by local name, so namespace prefixes and versions do not matter. The
//! reader holds one `Ntry` at a time: memory is bounded by the largest entry, not the file.
//!
//! Differences between versions handled here:
//! - `Sts` is `<Sts>BOOK</Sts>` (v02 to v07) or `<Sts><Cd>BOOK</Cd></Sts>` (v08 and later);
//! - the transaction amount is `TxDtls/Amt` (v03 and later) or `TxDtls/AmtDtls/TxAmt/Amt`
//!   (or `InstdAmt/Amt`);
//! - related parties are `RltdPties/Dbtr/Nm` (v02 to v07) or `RltdPties/Dbtr/Pty/Nm` (v08);
//! - the net total is `TxsSummry/TtlNtries/TtlNetNtryAmt` + `CdtDbtInd` (v02) or
//!   `TxsSummry/TtlNtries/TtlNetNtry/Amt` + `CdtDbtInd` (v03 and later);
//! - dates are `Dt` or `DtTm` (the date part is taken);
//! - version 001.01 names its message `BkToCstmrStmtV01` (…`AcctRptV01`, …`DbtCdtNtfctnV01`),
//!   its account `Acct/Id/PrtryAcct/Id`, its balance type `Bal/Tp/Cd`, and puts `Btch` and
//!   `TxDtls` directly in `Ntry` (no `NtryDtls`).
//!
//! Transactions of an entry: a `Ntry` without `TxDtls`, or with one, is one line of the
//! entry's amount (what reached the account). A `Ntry` with several `TxDtls` whose amounts
//! (in the entry's currency) add up to the entry is one line per `TxDtls`, whatever the
//! batch's `NbOfTxs` says (a `batch_count` finding notes a different count: banks count their
//! whole batch there). Otherwise (`TxDtls` without their own `Amt`, amounts that do not add
//! up, another currency) the entry is one line carrying what the details agree on.
//!
//! Checks (each failure a [`Finding`](super::Finding), reading goes on): `TxsSummry` against
//! the entries (`entry_count`, `entries_sum`, `net_total`, `credit_count`, `credit_sum`,
//! `debit_count`, `debit_sum`), the opening booked balance plus the booked entries against the
//! closing booked balance (`balance`), balances in another currency (`currency`), a batch's
//! `NbOfTxs` (`batch_count`, a warning) and `TtlAmt` (`batch_total`), and `TxDtls` amounts
//! against the entry (`entry_details`). A document without any statement is refused.

use super::check::{finding, Severity};
use super::{Event, FileHeader, Finding, Format, LineCountingReader, ParseError, Position};
use crate::domain::{
    Currency, Direction, Entry, EntryStatus, Money, StatedBalance, Statement, StatementTotals,
};
use chrono::{NaiveDate, NaiveTime};
use quick_xml::events::{BytesStart, Event as XmlEvent};
use quick_xml::Reader;
use rust_decimal::Decimal;
use std::collections::VecDeque;
use std::io::BufRead;
use std::str::FromStr;

/// Deeper nesting than this is not a camt file (the schema needs about 12 levels).
const MAX_DEPTH: usize = 64;

/// The message element under `Document`, and the format it names (version 001.01 adds
/// `V01` to the name).
fn message_format(local: &str) -> Option<Format> {
    let local = local.strip_suffix("V01").unwrap_or(local);
    match local {
        "BkToCstmrStmt" => Some(Format::Camt053),
        "BkToCstmrDbtCdtNtfctn" => Some(Format::Camt054),
        "BkToCstmrAcctRpt" => Some(Format::Camt052),
        _ => None,
    }
}

/// The statement element of a message.
fn statement_element(format: Format) -> &'static str {
    match format {
        Format::Camt052 => "Rpt",
        Format::Camt053 => "Stmt",
        Format::Camt054 => "Ntfctn",
        // not a camt format: the reader is never built for these
        Format::Mt940 | Format::Mt942 | Format::Bai2 | Format::Text => "Stmt",
    }
}

/// `camt.054.001.08` from a namespace such as `urn:iso:std:iso:20022:tech:xsd:camt.054.001.08`.
fn version_from_namespace(ns: &str) -> Option<String> {
    let start = ns.find("camt.")?;
    let rest = &ns[start..];
    let end = rest[5..]
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| i + 5)
        .unwrap_or(rest.len());
    let v = rest[..end].trim_end_matches('.');
    (v.len() > 5).then(|| v.to_string())
}

fn format_from_version(v: &str) -> Option<Format> {
    if v.starts_with("camt.052") {
        Some(Format::Camt052)
    } else if v.starts_with("camt.053") {
        Some(Format::Camt053)
    } else if v.starts_with("camt.054") {
        Some(Format::Camt054)
    } else {
        None
    }
}

/// Recognizes a camt document from the first bytes of a file: by the root element (the
/// message element under `Document`) first, then by the namespace, then by plain text.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let head = &head[..head.len().min(4096)];
    let mut r = Reader::from_reader(head);
    r.config_mut().check_end_names = false;
    let mut names: Vec<String> = Vec::new();
    let mut namespaces: Vec<String> = Vec::new();
    let mut parsed_xml = false;
    loop {
        match r.read_event() {
            Ok(XmlEvent::Start(e)) | Ok(XmlEvent::Empty(e)) => {
                parsed_xml = true;
                names.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                if names.len() == 1 {
                    for a in e.attributes().with_checks(false).flatten() {
                        let key = a.key.as_ref();
                        if key == b"xmlns" || key.starts_with(b"xmlns:") {
                            namespaces.push(String::from_utf8_lossy(&a.value).into_owned());
                        }
                    }
                }
                if names.len() == 2 {
                    break;
                }
            }
            Ok(XmlEvent::Decl(_))
            | Ok(XmlEvent::Comment(_))
            | Ok(XmlEvent::PI(_))
            | Ok(XmlEvent::DocType(_)) => parsed_xml = true,
            Ok(XmlEvent::Text(t)) if t.iter().all(|b| b.is_ascii_whitespace()) => {}
            Ok(XmlEvent::Eof) | Err(_) => break,
            Ok(_) => {
                if names.is_empty() {
                    break;
                }
            }
        }
    }
    match names.first().map(String::as_str) {
        Some("Document") => {
            if let Some(child) = names.get(1) {
                return message_format(child);
            }
            namespaces
                .iter()
                .filter_map(|ns| version_from_namespace(ns))
                .find_map(|v| format_from_version(&v))
        }
        Some(root) => message_format(root),
        None if parsed_xml => None,
        None => sniff_text(head),
    }
}

/// The plain-text fallback for a head that cannot be tokenized.
fn sniff_text(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    if text.contains("BkToCstmrDbtCdtNtfctn") || text.contains("camt.054") {
        Some(Format::Camt054)
    } else if text.contains("BkToCstmrStmt") || text.contains("camt.053") {
        Some(Format::Camt053)
    } else if text.contains("BkToCstmrAcctRpt") || text.contains("camt.052") {
        Some(Format::Camt052)
    } else {
        None
    }
}

/// A value the file declares, with where it was declared.
#[derive(Clone, Debug)]
struct Declared<T> {
    value: T,
    /// `line N, element ...` of the declaring element.
    loc: String,
    /// The declaring element, relative to the statement or entry (for the reason text).
    what: String,
}

#[derive(Default)]
struct DeclaredTotals {
    entry_count: Option<Declared<u64>>,
    sum: Option<Declared<Decimal>>,
    net_amount: Option<Declared<Decimal>>,
    net_direction: Option<Direction>,
    credit_count: Option<Declared<u64>>,
    credit_sum: Option<Declared<Decimal>>,
    debit_count: Option<Declared<u64>>,
    debit_sum: Option<Declared<Decimal>>,
}

impl DeclaredTotals {
    fn net(&self) -> Option<Decimal> {
        let amount = self.net_amount.as_ref()?.value;
        Some(match self.net_direction {
            Some(Direction::Debit) => -amount,
            _ => amount,
        })
    }

    fn to_totals(&self) -> StatementTotals {
        StatementTotals {
            entry_count: self.entry_count.as_ref().map(|d| d.value),
            sum: self.sum.as_ref().map(|d| d.value),
            net: self.net(),
            credit_count: self.credit_count.as_ref().map(|d| d.value),
            credit_sum: self.credit_sum.as_ref().map(|d| d.value),
            debit_count: self.debit_count.as_ref().map(|d| d.value),
            debit_sum: self.debit_sum.as_ref().map(|d| d.value),
        }
    }
}

#[derive(Default)]
struct BalanceState {
    code: Option<String>,
    amount: Option<Money>,
    direction: Option<Direction>,
    date: Option<NaiveDate>,
}

/// What the entries of a statement add up to.
#[derive(Default)]
struct Computed {
    entries: u64,
    sum: Decimal,
    credits: u64,
    credit_sum: Decimal,
    debits: u64,
    debit_sum: Decimal,
    /// Credits minus debits of the booked entries (what moves the booked balance).
    booked_net: Decimal,
}

#[derive(Default)]
struct StmtState {
    statement_id: Option<String>,
    account: Option<String>,
    account_ccy: Option<Currency>,
    balance_ccy: Option<Currency>,
    created_at: Option<String>,
    balance: BalanceState,
    opbd: Option<Decimal>,
    prcd: Option<Decimal>,
    clbd: Option<Decimal>,
    /// Where the opening and closing booked balances are stated.
    opening_loc: String,
    closing_loc: String,
    balances: Vec<StatedBalance>,
    declared: DeclaredTotals,
    header_emitted: bool,
    computed: Computed,
    entry_seq: u32,
    entry: Option<NtryState>,
    /// Findings about the statement itself, queued at its end.
    findings: Vec<Finding>,
}

#[derive(Default)]
struct BankTxCode {
    domain: Option<String>,
    family: Option<String>,
    sub_family: Option<String>,
    proprietary: Option<String>,
}

impl BankTxCode {
    fn is_set(&self) -> bool {
        self.domain.is_some() || self.proprietary.is_some()
    }
    fn code(&self) -> Option<String> {
        if self.domain.is_some() || self.family.is_some() || self.sub_family.is_some() {
            let parts: Vec<&str> = [&self.domain, &self.family, &self.sub_family]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            Some(parts.join("/"))
        } else {
            self.proprietary.clone()
        }
    }
    /// `rel` is the path below `BkTxCd`.
    fn set(&mut self, rel: &[&str], t: &str) {
        match rel {
            ["Domn", "Cd"] => self.domain = opt(t),
            ["Domn", "Fmly", "Cd"] => self.family = opt(t),
            ["Domn", "Fmly", "SubFmlyCd"] => self.sub_family = opt(t),
            ["Prtry", "Cd"] => self.proprietary = opt(t),
            _ => {}
        }
    }
}

#[derive(Default)]
struct Party {
    name: Option<String>,
    account: Option<String>,
}

impl Party {
    fn is_set(&self) -> bool {
        self.name.is_some() || self.account.is_some()
    }
}

#[derive(Default)]
struct TxState {
    amt: Option<Money>,
    tx_amt: Option<Money>,
    instd_amt: Option<Money>,
    direction: Option<Direction>,
    bank_ref: Option<String>,
    end_to_end_id: Option<String>,
    tx_id: Option<String>,
    debtor: Party,
    creditor: Party,
    reference: Option<String>,
    ustrd: Vec<String>,
    additional_info: Option<String>,
    return_reason: Option<String>,
    return_reason_prtry: Option<String>,
    bank_tx_code: BankTxCode,
}

impl TxState {
    /// The transaction's own amount: `Amt`, else `AmtDtls/TxAmt/Amt`, else `InstdAmt/Amt`.
    fn amount(&self) -> Option<Money> {
        self.amt.or(self.tx_amt).or(self.instd_amt)
    }
}

#[derive(Default)]
struct NtryState {
    amount: Option<Money>,
    direction: Option<Direction>,
    reversal: bool,
    status: Option<EntryStatus>,
    booking_date: Option<NaiveDate>,
    value_date: Option<NaiveDate>,
    acct_svcr_ref: Option<String>,
    bank_tx_code: BankTxCode,
    additional_info: Option<String>,
    txs: Vec<TxState>,
    current_tx: Option<TxState>,
    /// Index in `txs` of the first transaction of the current `NtryDtls`.
    details_first_tx: usize,
    batch_count: Option<Declared<u64>>,
    batch_total: Option<Declared<Money>>,
    batch_direction: Option<Direction>,
    /// The batches of the entry's `NtryDtls` (or of the entry itself, version 001.01).
    batches: Vec<Batch>,
}

/// A `Btch` and the `TxDtls` beside it (`txs[first..end]`).
struct Batch {
    count: Option<Declared<u64>>,
    total: Option<Declared<Money>>,
    direction: Option<Direction>,
    first: usize,
    end: usize,
}

/// Where an error is reported.
struct Ctx<'a> {
    file: &'a str,
    line: u64,
    path: &'a [String],
}

impl Ctx<'_> {
    fn loc(&self) -> String {
        location(self.line, self.path)
    }
    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.file, self.loc(), reason)
    }
    fn declared<T>(&self, value: T, rel: &[&str]) -> Declared<T> {
        Declared {
            value,
            loc: self.loc(),
            what: rel.join("/"),
        }
    }
}

fn location(line: u64, path: &[String]) -> String {
    if path.is_empty() {
        format!("line {line}, outside any element")
    } else {
        format!("line {line}, element {}", path.join("/"))
    }
}

/// Streaming camt reader: yields `File`, then per statement `Statement`, its `Entry`s and
/// `StatementEnd`. After an error it yields nothing more.
pub struct CamtReader<R> {
    xml: Reader<LineCountingReader<R>>,
    pos: Position,
    buf: Vec<u8>,
    file: String,
    /// The configured format; the reader reports what it finds.
    hint: Format,
    /// Local names of the open elements; `names[..depth]` is the current path (the strings
    /// beyond `depth` are kept for their allocation).
    names: Vec<String>,
    depth: usize,
    text: String,
    ccy_attr: Option<String>,
    root_seen: bool,
    root_closed: bool,
    format: Option<Format>,
    version: Option<String>,
    header: FileHeader,
    file_emitted: bool,
    statement_seen: bool,
    stmt: Option<StmtState>,
    queue: VecDeque<Event>,
    done: bool,
}

impl<R: BufRead> CamtReader<R> {
    pub fn new(reader: R, file: &str, format: Format) -> Self {
        let (counting, pos) = LineCountingReader::new(reader);
        let mut xml = Reader::from_reader(counting);
        let config = xml.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        CamtReader {
            xml,
            pos,
            buf: Vec::with_capacity(1024),
            file: file.to_string(),
            hint: format,
            names: Vec::new(),
            depth: 0,
            text: String::new(),
            ccy_attr: None,
            root_seen: false,
            root_closed: false,
            format: None,
            version: None,
            header: FileHeader::default(),
            file_emitted: false,
            statement_seen: false,
            stmt: None,
            queue: VecDeque::new(),
            done: false,
        }
    }

    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError::new(
            &self.file,
            location(self.pos.line(), &self.names[..self.depth]),
            reason,
        )
    }

    fn emit_file(&mut self) {
        if !self.file_emitted {
            self.file_emitted = true;
            let mut header = std::mem::take(&mut self.header);
            header.version = self.version.clone();
            // `format` is set before any element below the message element is read.
            let format = self.format.unwrap_or(self.hint);
            self.queue.push_back(Event::File(format, header));
        }
    }

    /// Reads one XML event and acts on it.
    fn step(&mut self) -> Result<(), ParseError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let res = self.step_with(&mut buf);
        self.buf = buf;
        res
    }

    fn step_with(&mut self, buf: &mut Vec<u8>) -> Result<(), ParseError> {
        let line_before = self.pos.line();
        let ev = match self.xml.read_event_into(buf) {
            Ok(ev) => ev,
            Err(e) => return Err(self.err(format!("malformed XML: {e}"))),
        };
        match ev {
            XmlEvent::Start(e) => self.on_start(&e),
            XmlEvent::End(_) => {
                let res = self.on_end();
                self.depth = self.depth.saturating_sub(1);
                res
            }
            XmlEvent::Empty(e) => {
                // Not produced with `expand_empty_elements`; handled the same way anyway.
                self.on_start(&e)?;
                let res = self.on_end();
                self.depth = self.depth.saturating_sub(1);
                res
            }
            XmlEvent::Text(t) => {
                if self.depth == 0 {
                    let Some(first) = t.iter().position(|b| !b.is_ascii_whitespace()) else {
                        return Ok(());
                    };
                    // Report the line where the stray text starts, not where it ends.
                    let line =
                        line_before + t[..first].iter().filter(|b| **b == b'\n').count() as u64;
                    let reason = if self.root_closed {
                        "text after the root element"
                    } else {
                        "not an XML document: text before the root element"
                    };
                    Err(ParseError::new(&self.file, location(line, &[]), reason))
                } else {
                    match t.unescape() {
                        Ok(s) => {
                            self.text.push_str(&s);
                            Ok(())
                        }
                        Err(e) => Err(self.err(format!("malformed XML text: {e}"))),
                    }
                }
            }
            XmlEvent::CData(c) => {
                if self.depth == 0 {
                    return Err(self.err("CDATA outside the root element"));
                }
                match c.decode() {
                    Ok(s) => {
                        self.text.push_str(&s);
                        Ok(())
                    }
                    Err(e) => Err(self.err(format!("malformed CDATA: {e}"))),
                }
            }
            XmlEvent::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc =
                        enc.map_err(|e| self.err(format!("malformed XML declaration: {e}")))?;
                    let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                    if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                        return Err(self.err(format!(
                            "unsupported encoding `{enc}` (only UTF-8 camt files are read)"
                        )));
                    }
                }
                Ok(())
            }
            XmlEvent::Comment(_) | XmlEvent::PI(_) | XmlEvent::DocType(_) => Ok(()),
            XmlEvent::Eof => self.on_eof(),
        }
    }

    fn on_eof(&mut self) -> Result<(), ParseError> {
        if self.depth > 0 {
            return Err(self.err(format!(
                "the file ends inside element {} (truncated file?)",
                self.names[self.depth - 1]
            )));
        }
        if !self.root_seen {
            return Err(if self.pos.bytes() == 0 {
                self.err("the file is empty")
            } else {
                self.err("no XML root element: not a camt document")
            });
        }
        self.done = true;
        Ok(())
    }

    fn on_start(&mut self, e: &BytesStart) -> Result<(), ParseError> {
        self.text.clear();
        let local = match std::str::from_utf8(e.local_name().as_ref()) {
            Ok(s) => s.to_string(),
            Err(_) => return Err(self.err("element name is not UTF-8")),
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("elements nested deeper than {MAX_DEPTH} levels")));
        }
        if self.names.len() > self.depth {
            self.names[self.depth].clear();
            self.names[self.depth].push_str(&local);
        } else {
            self.names.push(local.clone());
        }
        self.depth += 1;

        self.ccy_attr = None;
        if local == "Amt" || local == "TtlAmt" {
            match e.try_get_attribute("Ccy") {
                Ok(Some(a)) => match a.decode_and_unescape_value(self.xml.decoder()) {
                    Ok(v) => self.ccy_attr = Some(v.into_owned()),
                    Err(err) => return Err(self.err(format!("malformed Ccy attribute: {err}"))),
                },
                Ok(None) => {}
                Err(err) => return Err(self.err(format!("malformed attributes: {err}"))),
            }
        }

        match self.depth {
            1 => {
                if self.root_closed {
                    return Err(self.err("a second root element after the document"));
                }
                self.root_seen = true;
                if local != "Document" {
                    return Err(self.err(format!(
                        "root element `{local}` is not a camt Document (expected {})",
                        self.hint.as_str()
                    )));
                }
                let prefix = e.name().prefix().map(|p| p.as_ref().to_vec());
                let mut ns_default = None;
                let mut ns_any = None;
                for a in e.attributes() {
                    let a = a.map_err(|err| self.err(format!("malformed attributes: {err}")))?;
                    let key = a.key.as_ref();
                    let matches_prefix = match &prefix {
                        None => key == b"xmlns",
                        Some(p) => key.strip_prefix(b"xmlns:") == Some(p.as_slice()),
                    };
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        let v = String::from_utf8_lossy(&a.value).into_owned();
                        if matches_prefix {
                            ns_default = Some(v);
                        } else if ns_any.is_none() && v.contains("camt.") {
                            ns_any = Some(v);
                        }
                    }
                }
                self.version = ns_default
                    .or(ns_any)
                    .and_then(|ns| version_from_namespace(&ns));
            }
            2 => {
                let Some(found) = message_format(&local) else {
                    return Err(self.err(format!(
                        "`{local}` is not a camt message (expected BkToCstmrAcctRpt, \
                         BkToCstmrStmt or BkToCstmrDbtCdtNtfctn; configured format {})",
                        self.hint.as_str()
                    )));
                };
                if let Some(v) = &self.version {
                    if let Some(ns_format) = format_from_version(v) {
                        if ns_format != found {
                            return Err(self.err(format!(
                                "the namespace says {v} but the message element is `{local}`"
                            )));
                        }
                    }
                }
                if self.format.is_some() {
                    return Err(self.err("a second message element in the Document"));
                }
                self.format = Some(found);
            }
            3 => {
                let format = self.format.unwrap_or(self.hint);
                if local == statement_element(format) {
                    self.emit_file();
                    self.statement_seen = true;
                    self.stmt = Some(StmtState::default());
                } else if ["Stmt", "Ntfctn", "Rpt"].contains(&local.as_str()) {
                    return Err(self.err(format!(
                        "element `{local}` does not belong in a {} message",
                        format.as_str()
                    )));
                }
            }
            4 if local == "Ntry" && self.stmt.is_some() => {
                self.emit_statement_header()?;
                if let Some(st) = self.stmt.as_mut() {
                    st.entry_seq = st.entry_seq.checked_add(1).ok_or_else(|| {
                        ParseError::new(
                            &self.file,
                            location(self.pos.line(), &self.names[..self.depth]),
                            "too many entries in one statement",
                        )
                    })?;
                    st.entry = Some(NtryState::default());
                }
            }
            5 if local == "NtryDtls" => {
                if let Some(n) = self.stmt.as_mut().and_then(|s| s.entry.as_mut()) {
                    n.details_first_tx = n.txs.len();
                    n.batch_count = None;
                    n.batch_total = None;
                    n.batch_direction = None;
                }
            }
            6 if local == "TxDtls" && self.names[4] == "NtryDtls" => {
                if let Some(n) = self.stmt.as_mut().and_then(|s| s.entry.as_mut()) {
                    n.current_tx = Some(TxState::default());
                }
            }
            // version 001.01: `TxDtls` directly in `Ntry`
            5 if local == "TxDtls" && self.names[3] == "Ntry" => {
                if let Some(n) = self.stmt.as_mut().and_then(|s| s.entry.as_mut()) {
                    n.current_tx = Some(TxState::default());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Queues the `Statement` event (header and declared totals) once per statement.
    fn emit_statement_header(&mut self) -> Result<(), ParseError> {
        let line = self.pos.line();
        let Some(st) = self.stmt.as_mut() else {
            return Ok(());
        };
        if st.header_emitted {
            return Ok(());
        }
        let Some(account) = st.account.clone() else {
            return Err(ParseError::new(
                &self.file,
                location(line, &self.names[..self.depth]),
                "the statement has no account (Acct/Id/IBAN or Acct/Id/Othr/Id)",
            ));
        };
        st.header_emitted = true;
        let statement = Statement {
            statement_id: st.statement_id.clone(),
            account,
            currency: st.account_ccy.or(st.balance_ccy),
            created_at: st.created_at.clone(),
            opening_balance: st.opbd.or(st.prcd),
            closing_balance: st.clbd,
            declared: st.declared.to_totals(),
            balances: st.balances.clone(),
            sequence: None,
            entries: Vec::new(),
        };
        self.queue.push_back(Event::Statement(statement));
        Ok(())
    }

    /// Called on an end tag, before the element is popped from the path.
    fn on_end(&mut self) -> Result<(), ParseError> {
        let text = std::mem::take(&mut self.text);
        let ccy = self.ccy_attr.take();
        let t = text.trim();
        let depth = self.depth;
        match depth {
            0 => Ok(()),
            1 => {
                self.root_closed = true;
                if self.format.is_none() {
                    return Err(self.err("the Document holds no camt message"));
                }
                Ok(())
            }
            2 => {
                if !self.statement_seen {
                    let format = self.format.unwrap_or(self.hint);
                    return Err(self.err(format!(
                        "the document holds no statement: the message has no {} element",
                        statement_element(format)
                    )));
                }
                self.emit_file();
                Ok(())
            }
            3 => {
                let format = self.format.unwrap_or(self.hint);
                if self.names[2] == "GrpHdr" {
                    self.emit_file();
                } else if self.names[2] == statement_element(format) {
                    self.emit_statement_header()?;
                    if let Some(st) = self.stmt.take() {
                        let ctx = Ctx {
                            file: &self.file,
                            line: self.pos.line(),
                            path: &self.names[..depth],
                        };
                        let mut found = st.findings.clone();
                        found.extend(check_statement_totals(&ctx, &st));
                        for f in found {
                            self.queue.push_back(Event::Finding(f));
                        }
                    }
                    self.queue.push_back(Event::StatementEnd);
                }
                Ok(())
            }
            _ => {
                let ctx = Ctx {
                    file: &self.file,
                    line: self.pos.line(),
                    path: &self.names[..depth],
                };
                let rel: Vec<&str> = self.names[3..depth].iter().map(String::as_str).collect();
                if self.names[2] == "GrpHdr" {
                    match rel.as_slice() {
                        ["MsgId"] => self.header.file_id = opt(t),
                        ["CreDtTm"] => {
                            check_datetime(&ctx, t)?;
                            self.header.created_at = opt(t);
                        }
                        _ => {}
                    }
                    Ok(())
                } else if let Some(st) = self.stmt.as_mut() {
                    statement_element_end(&ctx, st, &rel, t, ccy, &mut self.queue)
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for CamtReader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.queue.clear();
                return Some(Err(e));
            }
        }
    }
}

/// An element below the statement element closes. `rel` is its path below the statement.
fn statement_element_end(
    ctx: &Ctx,
    st: &mut StmtState,
    rel: &[&str],
    t: &str,
    ccy: Option<String>,
    queue: &mut VecDeque<Event>,
) -> Result<(), ParseError> {
    match rel {
        ["Id"] => st.statement_id = opt(t),
        ["CreDtTm"] => {
            check_datetime(ctx, t)?;
            st.created_at = opt(t);
        }
        ["Acct", "Id", "IBAN"]
        | ["Acct", "Id", "Othr", "Id"]
        | ["Acct", "Id", "PrtryAcct", "Id"]
        | ["Acct", "Id", "BBAN"]
        | ["Acct", "Id", "UPIC"]
            if st.account.is_none() =>
        {
            st.account = opt(t)
        }
        ["Acct", "Ccy"] => {
            let c = Currency::parse(t).map_err(|e| ctx.err(e.to_string()))?;
            st.account_ccy = Some(c);
        }
        ["Bal", "Tp", "CdOrPrtry", "Cd"] | ["Bal", "Tp", "Cd"] => st.balance.code = opt(t),
        ["Bal", "Tp", "CdOrPrtry", "Prtry"] if st.balance.code.is_none() => {
            st.balance.code = opt(t)
        }
        ["Bal", "Amt"] => {
            let m = parse_money(ctx, t, ccy)?;
            if st.balance_ccy.is_none() {
                st.balance_ccy = Some(m.currency());
            }
            st.balance.amount = Some(m);
        }
        ["Bal", "CdtDbtInd"] => st.balance.direction = Some(parse_direction(ctx, t)?),
        ["Bal", "Dt", "Dt"] => st.balance.date = Some(parse_date(ctx, t)?),
        ["Bal", "Dt", "DtTm"] => st.balance.date = Some(check_datetime(ctx, t)?),
        ["Bal"] => {
            let b = std::mem::take(&mut st.balance);
            let amount = b.amount.ok_or_else(|| ctx.err("Bal has no Amt"))?;
            // mandatory, yet left out by some banks: read as a credit balance, and said
            let direction = match b.direction {
                Some(d) => d,
                None => {
                    st.findings.push(finding(
                        "mandatory_field",
                        Severity::Warning,
                        ctx.loc(),
                        "CdtDbtInd",
                        "missing",
                        st.statement_id.as_deref(),
                        format!(
                            "balance {} has no CdtDbtInd: read as a credit balance",
                            b.code.as_deref().unwrap_or("?")
                        ),
                    ));
                    Direction::Credit
                }
            };
            let signed = match direction {
                Direction::Credit => amount.amount(),
                Direction::Debit => -amount.amount(),
            };
            let loc = ctx.loc();
            match b.code.as_deref() {
                Some("OPBD") if st.opbd.is_none() => {
                    st.opbd = Some(signed);
                    st.opening_loc = loc;
                }
                Some("PRCD") if st.prcd.is_none() => {
                    st.prcd = Some(signed);
                    if st.opbd.is_none() {
                        st.opening_loc = loc;
                    }
                }
                Some("CLBD") if st.clbd.is_none() => {
                    st.clbd = Some(signed);
                    st.closing_loc = loc;
                }
                _ => {}
            }
            st.balances.push(StatedBalance {
                kind: b.code.unwrap_or_default(),
                amount: signed,
                currency: Some(amount.currency()),
                date: b.date,
                line: ctx.line,
            });
        }
        ["TxsSummry", "TtlNtries", "NbOfNtries"] => {
            st.declared.entry_count = Some(ctx.declared(parse_count(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlNtries", "Sum"] => {
            st.declared.sum = Some(ctx.declared(parse_decimal(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlNtries", "TtlNetNtryAmt"]
        | ["TxsSummry", "TtlNtries", "TtlNetNtry", "Amt"] => {
            st.declared.net_amount = Some(ctx.declared(parse_decimal(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlNtries", "CdtDbtInd"]
        | ["TxsSummry", "TtlNtries", "TtlNetNtry", "CdtDbtInd"] => {
            st.declared.net_direction = Some(parse_direction(ctx, t)?)
        }
        ["TxsSummry", "TtlCdtNtries", "NbOfNtries"] => {
            st.declared.credit_count = Some(ctx.declared(parse_count(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlCdtNtries", "Sum"] => {
            st.declared.credit_sum = Some(ctx.declared(parse_decimal(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlDbtNtries", "NbOfNtries"] => {
            st.declared.debit_count = Some(ctx.declared(parse_count(ctx, t)?, rel))
        }
        ["TxsSummry", "TtlDbtNtries", "Sum"] => {
            st.declared.debit_sum = Some(ctx.declared(parse_decimal(ctx, t)?, rel))
        }
        ["Ntry"] => {
            if let Some(n) = st.entry.take() {
                finish_entry(ctx, st, n, queue)?;
            }
        }
        ["Ntry", rest @ ..] => {
            if let Some(n) = st.entry.as_mut() {
                entry_element_end(ctx, n, rest, t, ccy)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An element below `Ntry` closes. `rel` is its path below `Ntry`.
fn entry_element_end(
    ctx: &Ctx,
    n: &mut NtryState,
    rel: &[&str],
    t: &str,
    ccy: Option<String>,
) -> Result<(), ParseError> {
    match rel {
        ["Amt"] => n.amount = Some(parse_money(ctx, t, ccy)?),
        ["CdtDbtInd"] => n.direction = Some(parse_direction(ctx, t)?),
        ["RvslInd"] => n.reversal = parse_bool(ctx, t)?,
        ["Sts"] if !t.is_empty() => n.status = Some(parse_status(ctx, t)?),
        ["Sts", "Cd"] | ["Sts", "Prtry"] => n.status = Some(parse_status(ctx, t)?),
        ["BookgDt", "Dt"] => n.booking_date = Some(parse_date(ctx, t)?),
        ["BookgDt", "DtTm"] => n.booking_date = Some(check_datetime(ctx, t)?),
        ["ValDt", "Dt"] => n.value_date = Some(parse_date(ctx, t)?),
        ["ValDt", "DtTm"] => n.value_date = Some(check_datetime(ctx, t)?),
        ["AcctSvcrRef"] => n.acct_svcr_ref = opt(t),
        ["BkTxCd", rest @ ..] => n.bank_tx_code.set(rest, t),
        ["AddtlNtryInf"] => n.additional_info = opt(t),
        ["NtryDtls"] => close_batch(n),
        ["NtryDtls", "Btch", "NbOfTxs"] | ["Btch", "NbOfTxs"] => {
            n.batch_count = Some(ctx.declared(parse_count(ctx, t)?, &["Btch", "NbOfTxs"]))
        }
        ["NtryDtls", "Btch", "TtlAmt"] | ["Btch", "TtlAmt"] => {
            n.batch_total = Some(ctx.declared(parse_money(ctx, t, ccy)?, &["Btch", "TtlAmt"]))
        }
        ["NtryDtls", "Btch", "CdtDbtInd"] | ["Btch", "CdtDbtInd"] => {
            n.batch_direction = Some(parse_direction(ctx, t)?)
        }
        ["NtryDtls", "TxDtls"] | ["TxDtls"] => {
            if let Some(tx) = n.current_tx.take() {
                n.txs.push(tx);
            }
        }
        ["NtryDtls", "TxDtls", rest @ ..] | ["TxDtls", rest @ ..] => {
            if let Some(tx) = n.current_tx.as_mut() {
                tx_element_end(ctx, tx, rest, t, ccy)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An element below `TxDtls` closes. `rel` is its path below `TxDtls`.
fn tx_element_end(
    ctx: &Ctx,
    tx: &mut TxState,
    rel: &[&str],
    t: &str,
    ccy: Option<String>,
) -> Result<(), ParseError> {
    match rel {
        ["Amt"] => tx.amt = Some(parse_money(ctx, t, ccy)?),
        ["AmtDtls", "TxAmt", "Amt"] => tx.tx_amt = Some(parse_money(ctx, t, ccy)?),
        ["AmtDtls", "InstdAmt", "Amt"] => tx.instd_amt = Some(parse_money(ctx, t, ccy)?),
        ["CdtDbtInd"] => tx.direction = Some(parse_direction(ctx, t)?),
        ["Refs", "AcctSvcrRef"] => tx.bank_ref = opt(t),
        ["Refs", "EndToEndId"] => {
            tx.end_to_end_id = opt(t).filter(|s| !s.eq_ignore_ascii_case("NOTPROVIDED"))
        }
        ["Refs", "TxId"] => tx.tx_id = opt(t),
        ["RltdPties", "Dbtr", "Nm"] | ["RltdPties", "Dbtr", "Pty", "Nm"] => tx.debtor.name = opt(t),
        ["RltdPties", "Cdtr", "Nm"] | ["RltdPties", "Cdtr", "Pty", "Nm"] => {
            tx.creditor.name = opt(t)
        }
        ["RltdPties", "DbtrAcct", "Id", "IBAN"] | ["RltdPties", "DbtrAcct", "Id", "Othr", "Id"] => {
            tx.debtor.account = opt(t)
        }
        ["RltdPties", "CdtrAcct", "Id", "IBAN"] | ["RltdPties", "CdtrAcct", "Id", "Othr", "Id"] => {
            tx.creditor.account = opt(t)
        }
        ["RmtInf", "Ustrd"] => {
            if let Some(s) = opt(t) {
                tx.ustrd.push(s);
            }
        }
        ["RmtInf", "Strd", "CdtrRefInf", "Ref"] if tx.reference.is_none() => tx.reference = opt(t),
        ["AddtlTxInf"] => tx.additional_info = opt(t),
        ["RtrInf", "Rsn", "Cd"] => tx.return_reason = opt(t),
        ["RtrInf", "Rsn", "Prtry"] => tx.return_reason_prtry = opt(t),
        ["BkTxCd", rest @ ..] => tx.bank_tx_code.set(rest, t),
        _ => {}
    }
    Ok(())
}

fn signed(m: Money, d: Direction) -> Money {
    match d {
        Direction::Credit => m,
        Direction::Debit => m.negated(),
    }
}

/// At the end of one `NtryDtls` (or of a version 001.01 `Ntry`): its `Btch` and `TxDtls` form
/// one batch of the entry.
fn close_batch(n: &mut NtryState) {
    if let Some(tx) = n.current_tx.take() {
        n.txs.push(tx);
    }
    let first = n.details_first_tx.min(n.txs.len());
    let batch = Batch {
        count: n.batch_count.take(),
        total: n.batch_total.take(),
        direction: n.batch_direction.take(),
        first,
        end: n.txs.len(),
    };
    if batch.count.is_some() || batch.total.is_some() || batch.end > batch.first {
        n.batches.push(batch);
    }
    n.details_first_tx = n.txs.len();
}

/// The signed sum of `txs` when every one has an amount in `currency`.
fn sum_in(txs: &[TxState], currency: Currency, default: Direction) -> Option<Money> {
    let mut sum = Money::zero(currency);
    for tx in txs {
        let a = tx.amount()?;
        if a.currency() != currency {
            return None;
        }
        sum = sum.checked_add(signed(a, tx.direction.unwrap_or(default)))?;
    }
    Some(sum)
}

fn dir_text(d: Direction) -> &'static str {
    match d {
        Direction::Credit => "CRDT",
        Direction::Debit => "DBIT",
    }
}

/// `12.50 EUR CRDT` of a signed sum.
fn signed_text(m: Money) -> String {
    let d = if m.minor() < 0 {
        Direction::Debit
    } else {
        Direction::Credit
    };
    format!("{} {} {}", m.amount().abs(), m.currency(), dir_text(d))
}

/// The one value the details agree on (`None` when none has one or they differ).
fn agreed<T: Clone + PartialEq>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    let mut out: Option<T> = None;
    for v in values.flatten() {
        match &out {
            None => out = Some(v),
            Some(o) if *o == v => {}
            Some(_) => return None,
        }
    }
    out
}

/// `</Ntry>`: decides the entry's lines (see the module's documentation), checks its batches
/// and details, adds it to the statement's totals and queues its lines and findings.
fn finish_entry(
    ctx: &Ctx,
    st: &mut StmtState,
    mut n: NtryState,
    queue: &mut VecDeque<Event>,
) -> Result<(), ParseError> {
    close_batch(&mut n);
    let amount = n.amount.ok_or_else(|| ctx.err("Ntry has no Amt"))?;
    let direction = n
        .direction
        .ok_or_else(|| ctx.err("Ntry has no CdtDbtInd"))?;
    let status = n.status.unwrap_or(EntryStatus::Booked);
    let entry_signed = signed(amount, direction);
    let stmt_id = st.statement_id.clone();
    let mut findings: Vec<Finding> = Vec::new();
    let sid = stmt_id.as_deref();

    // the details add up to the entry: one line each
    let details_sum = sum_in(&n.txs, amount.currency(), direction);
    let split = n.txs.len() > 1 && details_sum == Some(entry_signed);
    if n.txs.len() > 1 && !split {
        match (details_sum, n.txs.iter().all(|t| t.amount().is_some())) {
            (Some(sum), _) => findings.push(finding(
                "entry_details",
                Severity::Error,
                ctx.loc(),
                signed_text(entry_signed),
                signed_text(sum),
                sid,
                format!(
                    "the {} TxDtls amounts add up to {} but Ntry/Amt is {} {}: the entry is one line of its own amount",
                    n.txs.len(),
                    sum.amount(),
                    amount.amount(),
                    dir_text(direction)
                ),
            )),
            (None, true) => {
                let other = n
                    .txs
                    .iter()
                    .filter_map(TxState::amount)
                    .find(|a| a.currency() != amount.currency())
                    .map(|a| a.currency().to_string())
                    .unwrap_or_default();
                findings.push(finding(
                    "entry_details",
                    Severity::Warning,
                    ctx.loc(),
                    amount.currency(),
                    other.clone(),
                    sid,
                    format!(
                        "the {} TxDtls give amounts in {other}, the entry is in {}: not compared; the entry is one line of its own amount",
                        n.txs.len(),
                        amount.currency()
                    ),
                ))
            }
            // details without their own amount: the entry's amount is what reached the
            // account; nothing to compare
            (None, false) => {}
        }
    }
    let only_batch = n.batches.len() == 1;
    for b in &n.batches {
        let txs = &n.txs[b.first..b.end];
        if let Some(count) = &b.count {
            if !txs.is_empty() && count.value != txs.len() as u64 {
                findings.push(finding(
                    "batch_count",
                    Severity::Warning,
                    count.loc.clone(),
                    count.value,
                    txs.len(),
                    sid,
                    format!(
                        "{} declares {} transactions but the entry gives {} TxDtls ({})",
                        count.what,
                        count.value,
                        txs.len(),
                        if split {
                            "their amounts add up to the entry: one line each"
                        } else {
                            "the entry is one line of its own amount"
                        }
                    ),
                ));
            }
        }
        if let Some(total) = &b.total {
            let batch_dir = b.direction.or(n.direction).unwrap_or(Direction::Credit);
            let declared = signed(total.value, batch_dir);
            let computed = match sum_in(txs, total.value.currency(), batch_dir) {
                Some(sum) if !txs.is_empty() => Some((sum, "its TxDtls add up to")),
                _ if only_batch => Some((entry_signed, "the entry is")),
                _ => None,
            };
            if let Some((sum, what)) = computed {
                if sum != declared {
                    findings.push(finding(
                        "batch_total",
                        Severity::Error,
                        total.loc.clone(),
                        signed_text(declared),
                        signed_text(sum),
                        sid,
                        format!(
                            "{} declares {} {} but {what} {}",
                            total.what,
                            total.value.amount(),
                            total.value.currency(),
                            signed_text(sum)
                        ),
                    ));
                }
            }
        }
    }

    let overflow = || ctx.err("the statement's totals overflow");
    let c = &mut st.computed;
    c.entries += 1;
    c.sum = c.sum.checked_add(amount.amount()).ok_or_else(overflow)?;
    match direction {
        Direction::Credit => {
            c.credits += 1;
            c.credit_sum = c
                .credit_sum
                .checked_add(amount.amount())
                .ok_or_else(overflow)?;
        }
        Direction::Debit => {
            c.debits += 1;
            c.debit_sum = c
                .debit_sum
                .checked_add(amount.amount())
                .ok_or_else(overflow)?;
        }
    }
    if status == EntryStatus::Booked {
        c.booked_net = c
            .booked_net
            .checked_add(entry_signed.amount())
            .ok_or_else(overflow)?;
    }

    let entry_seq = st.entry_seq;
    let tx_count = if split {
        u32::try_from(n.txs.len()).map_err(|_| ctx.err("too many transactions in one entry"))?
    } else {
        1
    };
    let base = |tx_seq: u32, amount: Money, direction: Direction| Entry {
        entry_seq,
        tx_seq,
        tx_count,
        amount,
        currency: amount.currency(),
        direction,
        reversal: n.reversal,
        status,
        booking_date: n.booking_date,
        value_date: n.value_date,
        bank_ref: n.acct_svcr_ref.clone(),
        entry_ref: n.acct_svcr_ref.clone(),
        end_to_end_id: None,
        tx_id: None,
        payer_name: None,
        payer_account: None,
        reference: None,
        remittance: None,
        additional_info: n.additional_info.clone(),
        return_reason: None,
        instructed_amount: None,
        bank_tx_code: n.bank_tx_code.code(),
    };
    let payer = |tx: &TxState, dir: Direction| {
        let (preferred, other) = if dir == Direction::Credit || n.reversal {
            (&tx.debtor, &tx.creditor)
        } else {
            (&tx.creditor, &tx.debtor)
        };
        let p = if preferred.is_set() { preferred } else { other };
        (p.name.clone(), p.account.clone())
    };
    let reason = |tx: &TxState| {
        tx.return_reason
            .clone()
            .or_else(|| tx.return_reason_prtry.clone())
    };

    if split {
        for (i, tx) in n.txs.iter().enumerate() {
            let dir = tx.direction.unwrap_or(direction);
            // every transaction of a split entry has an amount (checked above)
            let a = tx.amount().unwrap_or(amount);
            let mut e = base(i as u32 + 1, a, dir);
            e.instructed_amount = tx.instd_amt.filter(|x| *x != a);
            if tx.bank_ref.is_some() {
                e.bank_ref = tx.bank_ref.clone();
            }
            e.end_to_end_id = tx.end_to_end_id.clone();
            e.tx_id = tx.tx_id.clone();
            (e.payer_name, e.payer_account) = payer(tx, dir);
            e.reference = tx.reference.clone();
            e.remittance = (!tx.ustrd.is_empty()).then(|| tx.ustrd.join(" "));
            if tx.additional_info.is_some() {
                e.additional_info = tx.additional_info.clone();
            }
            e.return_reason = reason(tx);
            if tx.bank_tx_code.is_set() {
                e.bank_tx_code = tx.bank_tx_code.code();
            }
            queue.push_back(Event::Entry(e));
        }
    } else {
        // one line of the entry's amount, carrying what the details agree on
        let mut e = base(1, amount, direction);
        let txs = &n.txs;
        if let [tx] = txs.as_slice() {
            e.instructed_amount = tx.amount().filter(|a| *a != amount);
        }
        if let Some(r) = agreed(txs.iter().map(|t| t.bank_ref.clone())) {
            e.bank_ref = Some(r);
        }
        e.end_to_end_id = agreed(txs.iter().map(|t| t.end_to_end_id.clone()));
        e.tx_id = agreed(txs.iter().map(|t| t.tx_id.clone()));
        let payers: Vec<(Option<String>, Option<String>)> =
            txs.iter().map(|t| payer(t, direction)).collect();
        e.payer_name = agreed(payers.iter().map(|p| p.0.clone()));
        e.payer_account = agreed(payers.iter().map(|p| p.1.clone()));
        e.reference = agreed(txs.iter().map(|t| t.reference.clone()));
        let mut remittances: Vec<String> = Vec::new();
        for t in txs {
            let r = t.ustrd.join(" ");
            if !r.is_empty() && !remittances.contains(&r) {
                remittances.push(r);
            }
        }
        e.remittance = (!remittances.is_empty()).then(|| remittances.join(" | "));
        if let Some(i) = agreed(txs.iter().map(|t| t.additional_info.clone())) {
            e.additional_info = Some(i);
        }
        e.return_reason = agreed(txs.iter().map(reason));
        if let Some(code) = agreed(txs.iter().map(|t| {
            t.bank_tx_code
                .is_set()
                .then(|| t.bank_tx_code.code())
                .flatten()
        })) {
            e.bank_tx_code = Some(code);
        }
        queue.push_back(Event::Entry(e));
    }
    // in file order: a batch's declarations come before the entry's end
    findings.sort_by_key(|f| f.line);
    for f in findings {
        queue.push_back(Event::Finding(f));
    }
    Ok(())
}

/// At the end of a statement: what `TxsSummry` declares must be what the entries add up to,
/// and the opening booked balance plus the booked entries must be the closing one.
fn check_statement_totals(ctx: &Ctx, st: &StmtState) -> Vec<Finding> {
    let d = &st.declared;
    let c = &st.computed;
    let sid = st.statement_id.as_deref();
    let mut out = Vec::new();
    let counts = [
        (&d.entry_count, c.entries, "entries", "entry_count"),
        (&d.credit_count, c.credits, "credit entries", "credit_count"),
        (&d.debit_count, c.debits, "debit entries", "debit_count"),
    ];
    for (declared, actual, what, check) in counts {
        if let Some(decl) = declared {
            if decl.value != actual {
                out.push(finding(
                    check,
                    Severity::Error,
                    decl.loc.clone(),
                    decl.value,
                    actual,
                    sid,
                    format!(
                        "{} declares {} but the statement has {actual} {what}",
                        decl.what, decl.value
                    ),
                ));
            }
        }
    }
    let sums = [
        (&d.sum, c.sum, "the entries add up to", "entries_sum"),
        (
            &d.credit_sum,
            c.credit_sum,
            "the credit entries add up to",
            "credit_sum",
        ),
        (
            &d.debit_sum,
            c.debit_sum,
            "the debit entries add up to",
            "debit_sum",
        ),
    ];
    for (declared, actual, what, check) in sums {
        if let Some(decl) = declared {
            if decl.value != actual {
                out.push(finding(
                    check,
                    Severity::Error,
                    decl.loc.clone(),
                    decl.value,
                    actual,
                    sid,
                    format!("{} declares {} but {what} {actual}", decl.what, decl.value),
                ));
            }
        }
    }
    if let Some(decl) = &d.net_amount {
        let net = c.credit_sum - c.debit_sum;
        let ok = match d.net_direction {
            Some(Direction::Credit) => net == decl.value,
            Some(Direction::Debit) => net == -decl.value,
            // No indicator: the amount is unsigned; either sign agrees.
            None => net.abs() == decl.value,
        };
        if !ok {
            let ind = match d.net_direction {
                Some(Direction::Credit) => " CRDT",
                Some(Direction::Debit) => " DBIT",
                None => "",
            };
            out.push(finding(
                "net_total",
                Severity::Error,
                decl.loc.clone(),
                format!("{}{ind}", decl.value),
                net,
                sid,
                format!(
                    "{} declares {}{ind} but credits minus debits are {net}",
                    decl.what, decl.value
                ),
            ));
        }
    }
    // balances in another currency than the statement's
    let currency = st.account_ccy.or(st.balance_ccy);
    if let Some(ccy) = currency {
        for b in &st.balances {
            if let Some(bc) = b.currency.filter(|bc| *bc != ccy) {
                out.push(finding(
                    "currency",
                    Severity::Error,
                    format!("line {}, element {}/Bal", b.line, ctx.path.join("/")),
                    bc,
                    ccy,
                    sid,
                    format!(
                        "balance {} is in {bc} but the statement is in {ccy}",
                        if b.kind.is_empty() { "?" } else { &b.kind }
                    ),
                ));
            }
        }
    }
    if let (Some(open), Some(close)) = (st.opbd.or(st.prcd), st.clbd) {
        let computed = open + c.booked_net;
        if computed != close {
            out.push(finding(
                "balance",
                Severity::Error,
                st.closing_loc.clone(),
                close,
                computed,
                sid,
                format!(
                    "opening {open} ({}) + booked entries {} != closing {close}",
                    st.opening_loc, c.booked_net
                ),
            ));
        }
    }
    out
}

/// Trimmed text, `None` when empty.
fn opt(t: &str) -> Option<String> {
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A non-negative decimal in plain notation (`1234.50`): no sign, no exponent, no grouping.
fn parse_decimal(ctx: &Ctx, t: &str) -> Result<Decimal, ParseError> {
    if t.is_empty() {
        return Err(ctx.err("amount is empty"));
    }
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let dots = digits.bytes().filter(|b| *b == b'.').count();
    let well_formed = dots <= 1
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !well_formed {
        return Err(ctx.err(format!("amount `{t}` is not a decimal")));
    }
    if negative {
        return Err(ctx.err(format!("amount `{t}` is negative")));
    }
    let significant = digits.trim_start_matches(['0', '.']).len();
    if significant > 28 {
        return Err(ctx.err(format!("amount `{t}` has too many digits")));
    }
    Decimal::from_str(digits).map_err(|_| ctx.err(format!("amount `{t}` is not a decimal")))
}

/// An amount with its `Ccy` attribute, fitting the currency's decimals.
fn parse_money(ctx: &Ctx, t: &str, ccy: Option<String>) -> Result<Money, ParseError> {
    let ccy = ccy.ok_or_else(|| ctx.err("the amount has no Ccy attribute"))?;
    let currency = Currency::parse(&ccy).map_err(|e| ctx.err(e.to_string()))?;
    let d = parse_decimal(ctx, t)?;
    Money::from_decimal(d, currency).map_err(|e| ctx.err(e.to_string()))
}

fn parse_count(ctx: &Ctx, t: &str) -> Result<u64, ParseError> {
    if t.is_empty() || t.len() > 15 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ctx.err(format!("`{t}` is not a count (up to 15 digits)")));
    }
    t.parse()
        .map_err(|_| ctx.err(format!("`{t}` is not a count (up to 15 digits)")))
}

fn parse_direction(ctx: &Ctx, t: &str) -> Result<Direction, ParseError> {
    match t {
        "CRDT" => Ok(Direction::Credit),
        "DBIT" => Ok(Direction::Debit),
        _ => Err(ctx.err(format!("CdtDbtInd `{t}` is neither CRDT nor DBIT"))),
    }
}

fn parse_bool(ctx: &Ctx, t: &str) -> Result<bool, ParseError> {
    match t {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ctx.err(format!("`{t}` is not a boolean (true, false, 1, 0)"))),
    }
}

fn parse_status(ctx: &Ctx, t: &str) -> Result<EntryStatus, ParseError> {
    match t {
        "BOOK" => Ok(EntryStatus::Booked),
        "PDNG" | "FUTR" => Ok(EntryStatus::Pending),
        "INFO" => Ok(EntryStatus::Info),
        _ => Err(ctx.err(format!(
            "unknown entry status `{t}` (expected BOOK, PDNG, INFO or FUTR)"
        ))),
    }
}

/// Splits a time zone (`Z`, `+08:00`, `-05:00`) off the end of a date or time.
fn strip_zone(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_suffix('Z') {
        return Some(rest);
    }
    let b = s.as_bytes();
    if b.len() >= 6 {
        let z = &s[s.len() - 6..];
        let zb = z.as_bytes();
        if (zb[0] == b'+' || zb[0] == b'-')
            && zb[1].is_ascii_digit()
            && zb[2].is_ascii_digit()
            && zb[3] == b':'
            && zb[4].is_ascii_digit()
            && zb[5].is_ascii_digit()
        {
            return Some(&s[..s.len() - 6]);
        }
    }
    None
}

fn ymd(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// An ISO date (`2024-11-05`, optionally with a time zone).
fn parse_date(ctx: &Ctx, t: &str) -> Result<NaiveDate, ParseError> {
    let s = strip_zone(t).unwrap_or(t);
    ymd(s).ok_or_else(|| ctx.err(format!("`{t}` is not a date (YYYY-MM-DD)")))
}

/// An ISO date-time (`2024-11-05T10:15:00`, optional fraction and time zone); its date.
fn check_datetime(ctx: &Ctx, t: &str) -> Result<NaiveDate, ParseError> {
    let bad = || ctx.err(format!("`{t}` is not a date-time (YYYY-MM-DDThh:mm:ss)"));
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let date = ymd(date).ok_or_else(bad)?;
    let time = strip_zone(time).unwrap_or(time);
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    if hms.len() != 8 || NaiveTime::parse_from_str(hms, "%H:%M:%S").is_err() {
        return Err(bad());
    }
    Ok(date)
}

#[cfg(test)]
#[path = "camt_tests.rs"]
mod tests;
