//! Placeholder: delimited and fixed-width text files described in the config.

use super::{Event, ParseError};
use serde::Deserialize;
use std::io::BufRead;

/// How a bank's delimited or fixed-width file is laid out (`[bank.layout]` in the config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextLayout {}

impl TextLayout {
    /// Checks the layout; the message names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Streaming reader.
pub struct TextReader<R> {
    file: String,
    done: bool,
    _reader: R,
}

impl<R: BufRead> TextReader<R> {
    pub fn new(reader: R, file: &str, _layout: &TextLayout) -> Self {
        TextReader { file: file.to_string(), done: false, _reader: reader }
    }
}

impl<R: BufRead> Iterator for TextReader<R> {
    type Item = Result<Event, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.done = true;
        Some(Err(ParseError::new(&self.file, "start of file", "format not supported yet")))
    }
}
