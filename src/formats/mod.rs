//! Bank file formats. Each module turns one format into the normalized statement model of
//! [`crate::domain::statement`], as a stream of [`Event`]s so that a file of any size is read
//! in bounded memory.
//!
//! Adding a format: a module with a reader implementing `Iterator<Item = Result<Event,
//! ParseError>>`, a variant in [`Format`], and a line in [`open`] and [`sniff`].

pub mod bai2;
pub mod camt;
pub mod check;
pub mod compressed;
mod error;
mod lines;
pub mod mt940;
pub mod text;

pub use check::{strict, Finding, Severity};
pub use error::ParseError;
pub use lines::{LineCountingReader, Position};

use crate::domain::{Entry, Statement};
use serde::Serialize;
use std::io::BufRead;

pub use crate::config::Format;

/// File-level header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileHeader {
    /// The message id the bank gave the file (camt `GrpHdr/MsgId`).
    pub file_id: Option<String>,
    pub created_at: Option<String>,
    /// The camt message version, e.g. `camt.054.001.08`, when the file names one.
    pub version: Option<String>,
}

/// What a streaming reader yields, in file order: `File` once, then for each statement a
/// `Statement` (header and declared totals, no entries), its `Entry`s, and `StatementEnd`.
/// A reader checks the statement's declared totals before it yields `StatementEnd`: each
/// failed check is a `Finding` (after the statement's entries, before its `StatementEnd`, or
/// after the last statement for a file's own trailer), and reading goes on.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    File(Format, FileHeader),
    Statement(Statement),
    Entry(Entry),
    Finding(Finding),
    StatementEnd,
}

/// A streaming reader over one file.
pub type EventReader<'a> = Box<dyn Iterator<Item = Result<Event, ParseError>> + Send + 'a>;

/// Guesses the format from the first bytes of a file. Text layouts are not guessed: they
/// need the bank's layout.
pub fn sniff(head: &[u8]) -> Option<Format> {
    camt::sniff(head)
        .or_else(|| mt940::sniff(head))
        .or_else(|| bai2::sniff(head))
}

/// Opens a streaming reader. `format` is what the bank is configured to send (`None`: sniff).
/// `file` names the file in errors.
pub fn open<'a, R: BufRead + Send + 'a>(
    format: Option<Format>,
    reader: R,
    file: &str,
) -> Result<EventReader<'a>, ParseError> {
    open_with(format, None, reader, file)
}

/// [`open`] for a bank whose files are laid out by `layout` (format `text`).
pub fn open_with<'a, R: BufRead + Send + 'a>(
    format: Option<Format>,
    layout: Option<&text::TextLayout>,
    mut reader: R,
    file: &str,
) -> Result<EventReader<'a>, ParseError> {
    let format = match format {
        Some(f) => f,
        None => {
            let head = reader.fill_buf().map_err(|e| ParseError::io(file, &e))?;
            if head.is_empty() {
                return Err(ParseError::new(file, "start of file", "the file is empty"));
            }
            sniff(head).ok_or_else(|| {
                let start: String = String::from_utf8_lossy(&head[..head.len().min(200)])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(40)
                    .collect();
                ParseError::new(
                    file,
                    "line 1",
                    format!(
                        "not a known bank file format (camt, MT940/MT942, BAI2): the file starts with `{start}`"
                    ),
                )
            })?
        }
    };
    Ok(match format {
        Format::Camt052 | Format::Camt053 | Format::Camt054 => {
            Box::new(camt::CamtReader::new(reader, file, format))
        }
        Format::Mt940 | Format::Mt942 => Box::new(mt940::Mt940Reader::new(reader, file, format)),
        Format::Bai2 => Box::new(bai2::Bai2Reader::new(reader, file, format)),
        Format::Text => {
            let Some(layout) = layout else {
                return Err(ParseError::new(
                    file,
                    "start of file",
                    "format `text` needs the bank's [bank.layout] in the config",
                ));
            };
            Box::new(text::TextReader::new(reader, file, layout))
        }
    })
}

/// A whole file parsed into memory: for `billrecon parse` and tests. Ingest streams instead.
#[derive(Clone, Debug, Serialize)]
pub struct ParsedFile {
    pub format: Format,
    #[serde(flatten)]
    pub header: FileHeader,
    pub statements: Vec<Statement>,
    /// Every failed check, in file order.
    pub checks: Vec<Finding>,
}

impl ParsedFile {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.statements.iter().flat_map(|s| s.entries.iter())
    }

    /// The findings of severity `error` (what a `strict` bank is quarantined for).
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.checks.iter().filter(|f| f.severity == Severity::Error)
    }

    /// The file as a `strict` ingest takes it: an error when a check failed.
    pub fn strict(self, file: &str) -> Result<ParsedFile, ParseError> {
        if let Some(f) = self.errors().next() {
            return Err(f.to_error(file));
        }
        Ok(self)
    }
}

/// Reads a whole file through the streaming reader and collects it.
pub fn parse_all<R: BufRead + Send>(
    format: Option<Format>,
    reader: R,
    file: &str,
) -> Result<ParsedFile, ParseError> {
    collect(open(format, reader, file)?, file)
}

/// Collects a stream of events into a [`ParsedFile`].
pub fn collect(events: EventReader<'_>, file: &str) -> Result<ParsedFile, ParseError> {
    collect_partial(events, file).map_err(|p| p.error)
}

/// What was read before an error (for `billrecon parse`).
#[derive(Debug)]
pub struct PartialRead {
    /// `None` when the error came before the file's first statement.
    pub read: Option<ParsedFile>,
    pub error: ParseError,
}

/// [`collect`], keeping what was read before an error.
pub fn collect_partial(
    events: EventReader<'_>,
    file: &str,
) -> Result<ParsedFile, Box<PartialRead>> {
    let mut out: Option<ParsedFile> = None;
    let mut early: Vec<Finding> = Vec::new();
    for ev in events {
        let ev = match ev {
            Ok(ev) => ev,
            Err(error) => {
                return Err(Box::new(PartialRead {
                    read: out.filter(|f| !f.statements.is_empty()),
                    error,
                }))
            }
        };
        match ev {
            Event::File(format, header) => {
                out = Some(ParsedFile {
                    format,
                    header,
                    statements: vec![],
                    checks: std::mem::take(&mut early),
                })
            }
            Event::Finding(f) => match out.as_mut() {
                Some(o) => o.checks.push(f),
                None => early.push(f),
            },
            Event::Statement(s) => {
                if let Some(f) = out.as_mut() {
                    f.statements.push(s)
                }
            }
            Event::Entry(e) => {
                if let Some(s) = out.as_mut().and_then(|f| f.statements.last_mut()) {
                    s.entries.push(e)
                }
            }
            Event::StatementEnd => {}
        }
    }
    out.ok_or_else(|| {
        Box::new(PartialRead {
            read: None,
            error: ParseError::new(file, "end of file", "no statement found"),
        })
    })
}

/// How many cases each parser's fuzz (proptest) test runs: `default` in CI, more with
/// `BILLRECON_FUZZ_CASES=N` for a long run (docs/FUZZING.md).
#[cfg(test)]
pub(crate) fn fuzz_cases(default: u32) -> u32 {
    std::env::var("BILLRECON_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fuzz seeds: the real bank files of other projects, byte for byte, from the shared corpus
/// (`../shared/fixtures/real/<folder>`) and `fixtures/real-extra/<folder>` (docs/FUZZING.md).
/// Files over `max_bytes` are left out (they make a case slow, not more varied).
#[cfg(test)]
pub(crate) fn fuzz_seeds(folders: &[&str], max_bytes: u64) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for base in ["../shared/fixtures/real", "fixtures/real-extra"] {
        for folder in folders {
            if let Ok(rd) = std::fs::read_dir(root.join(base).join(folder)) {
                paths.extend(rd.flatten().map(|e| e.path()).filter(|p| {
                    p.metadata()
                        .map(|m| m.is_file() && m.len() <= max_bytes)
                        .unwrap_or(false)
                }));
            }
        }
    }
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}
