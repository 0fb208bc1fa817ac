//! The one error every parser returns: which file, where in it, and why.

use std::fmt;

/// A file that cannot be ingested: names the file, the place (line and element, or line and
/// field) and the reason. The same text goes to the quarantine record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    /// e.g. `line 42, element Stmt/Ntry/Amt`.
    pub location: String,
    pub reason: String,
}

impl ParseError {
    pub fn new(file: &str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError {
            file: file.to_string(),
            location: location.into(),
            reason: reason.into(),
        }
    }
    pub fn io(file: &str, e: &std::io::Error) -> Self {
        ParseError::new(file, "reading", format!("I/O error: {e}"))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.location, self.reason)
    }
}
