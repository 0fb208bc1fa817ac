//! Bank file formats. Each module turns one format into the normalized statement model of
//! [`crate::domain::statement`], as a stream of [`Event`]s so that a file of any size is read
//! in bounded memory.
//!
//! Adding a format: a module with a reader implementing `Iterator<Item = Result<Event,
//! ParseError>>`, a variant in [`Format`], and a line in [`open`] and [`sniff`].

pub mod bai2;
pub mod camt;
pub mod compressed;
mod error;
mod lines;
pub mod mt940;
pub mod text;

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
/// A reader checks the statement's declared totals before it yields `StatementEnd`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    File(Format, FileHeader),
    Statement(Statement),
    Entry(Entry),
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
                ParseError::new(file, "start of file", "not a known bank file format")
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
}

impl ParsedFile {
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.statements.iter().flat_map(|s| s.entries.iter())
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
    let mut out: Option<ParsedFile> = None;
    for ev in events {
        match ev? {
            Event::File(format, header) => {
                out = Some(ParsedFile {
                    format,
                    header,
                    statements: vec![],
                })
            }
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
    out.ok_or_else(|| ParseError::new(file, "end of file", "no statement found"))
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
