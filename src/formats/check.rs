//! Findings: what a reader's checks of a file's declared totals found.
//!
//! Readers read leniently and check strictly, and keep the two apart: a file whose syntax
//! cannot be read is a [`ParseError`]; a file that reads but whose declared totals (balances,
//! entry counts and sums, batch totals, trailers) disagree with what it holds yields a
//! [`Finding`] event for each failed check and goes on. What happens then is the caller's
//! policy: `billrecon parse` lists every finding; ingest quarantines a file on its first
//! [`Severity::Error`] finding when the bank's `checks` policy is `strict` (the default, see
//! [`strict`]), and stores every finding when it is `warn`.

use super::{Event, EventReader, ParseError};
use serde::Serialize;

/// How much a failed check matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A figure the file declares contradicts what it holds (a balance that does not close,
    /// a control total, a count). `strict` quarantines the file.
    Error,
    /// A declared figure that differs for a known, harmless reason (a batch count that counts
    /// the bank's whole batch while the money agrees), or a dialect read leniently. Never
    /// quarantines; stored and shown like an error.
    Warning,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One failed check: which check, where the declaring element is, the figure the file
/// declares and the figure computed from what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable name: `balance`, `balance_chain`, `statement_balance`, `entry_count`,
    /// `entries_sum`, `net_total`, `credit_count`, `credit_sum`, `debit_count`, `debit_sum`,
    /// `batch_count`, `batch_total`, `entry_details`, `account_control_total`,
    /// `account_record_count`, `group_control_total`, `group_account_count`,
    /// `group_record_count`, `file_control_total`, `file_group_count`, `file_record_count`,
    /// `currency`, `mandatory_field`, `funds_code`, `structure`.
    pub check: &'static str,
    /// The line of the declaring field, element or record (1-based); 0 when the file has no
    /// such line (a field that is missing altogether is reported at the statement's start).
    pub line: u64,
    /// The same place as a [`ParseError`] names it, e.g. `line 20, field :62F:`.
    pub location: String,
    /// What the file declares (an amount, a count, a currency), as text.
    pub declared: String,
    /// What the file's contents add up to, as text.
    pub computed: String,
    pub severity: Severity,
    /// The statement the check is about (its id), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The finding in words, for people.
    pub message: String,
}

impl Finding {
    /// The error a `strict` ingest quarantines the file with.
    pub fn to_error(&self, file: &str) -> ParseError {
        ParseError::new(
            file,
            self.location.clone(),
            format!("failed check `{}`: {}", self.check, self.message),
        )
    }
}

/// The number in `line N, ...` (0 when there is none).
pub fn line_of(location: &str) -> u64 {
    location
        .strip_prefix("line ")
        .or_else(|| location.split("line ").nth(1))
        .map(|rest| {
            rest.bytes()
                .take_while(u8::is_ascii_digit)
                .fold(0u64, |n, b| {
                    n.saturating_mul(10).saturating_add((b - b'0') as u64)
                })
        })
        .unwrap_or(0)
}

/// A builder the readers share.
pub(crate) fn finding(
    check: &'static str,
    severity: Severity,
    location: impl Into<String>,
    declared: impl ToString,
    computed: impl ToString,
    statement: Option<&str>,
    message: impl Into<String>,
) -> Finding {
    let location = location.into();
    Finding {
        check,
        line: line_of(&location),
        location,
        declared: declared.to_string(),
        computed: computed.to_string(),
        severity,
        statement: statement.map(str::to_string),
        message: message.into(),
    }
}

/// The stream as a `strict` ingest sees it: the first [`Severity::Error`] finding becomes the
/// error that ends it (warnings pass through as findings).
pub fn strict<'a>(events: EventReader<'a>, file: &str) -> EventReader<'a> {
    let file = file.to_string();
    let mut done = false;
    Box::new(events.map_while(move |ev| {
        if done {
            return None;
        }
        match ev {
            Ok(Event::Finding(f)) if f.severity == Severity::Error => {
                done = true;
                Some(Err(f.to_error(&file)))
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
            ok => Some(ok),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_read_from_locations() {
        assert_eq!(line_of("line 20, field :62F:"), 20);
        assert_eq!(line_of("line 7, record 49"), 7);
        assert_eq!(line_of("end of file, line 12"), 12);
        assert_eq!(line_of("start of file"), 0);
    }
}
