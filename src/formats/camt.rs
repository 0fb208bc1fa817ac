//! ISO 20022 camt.052 / camt.053 / camt.054, versions 001.02 to 001.08 (and later ones that
//! keep the same element names), read as a stream with quick-xml.

use super::{Event, Format, ParseError};
use std::io::BufRead;

/// Recognizes a camt document from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
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

/// Streaming camt reader (stub: being written).
pub struct CamtReader<R> {
    _r: R,
    file: String,
    _format: Format,
    done: bool,
}

impl<R: BufRead> CamtReader<R> {
    pub fn new(reader: R, file: &str, format: Format) -> Self {
        CamtReader { _r: reader, file: file.to_string(), _format: format, done: false }
    }
}

impl<R: BufRead> Iterator for CamtReader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.done = true;
        Some(Err(ParseError::new(&self.file, "start of file", "camt reader not implemented")))
    }
}
