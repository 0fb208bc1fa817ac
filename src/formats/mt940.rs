//! Placeholder: the mt940 reader is being written (see the module docs once it lands).

use super::{Event, Format, ParseError};
use std::io::BufRead;

/// Guesses whether a file starts like this format.
pub fn sniff(_head: &[u8]) -> Option<Format> {
    None
}

/// Streaming reader.
pub struct Mt940Reader<R> {
    file: String,
    done: bool,
    _reader: R,
}

impl<R: BufRead> Mt940Reader<R> {
    pub fn new(reader: R, file: &str, _format: Format) -> Self {
        Mt940Reader { file: file.to_string(), done: false, _reader: reader }
    }
}

impl<R: BufRead> Iterator for Mt940Reader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.done = true;
        Some(Err(ParseError::new(&self.file, "start of file", "format not supported yet")))
    }
}
