//! billrecon: matches partner-bank payments to a utility's bills and proves the money adds up.
//!
//! # Layout
//! - [`domain`]: money, identifiers, the normalized statement. Pure, no I/O.
//! - [`formats`]: one module per bank file format, each streaming into the normalized statement.

pub mod domain;
pub mod formats;
