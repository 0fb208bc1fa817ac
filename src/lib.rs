//! billrecon: matches partner-bank payments to a utility's bills and proves the money adds up.
//!
//! # Layout (the flow: bank file -> statement -> payments -> allocations -> proof)
//! - [`domain`]: money, identifiers, the normalized statement. Pure, no I/O.
//! - [`config`]: the typed, validated configuration.
//! - [`formats`]: one module per bank file format, each streaming into the normalized statement.
//! - [`billing`]: the billing system's exports (customers, bills), imported all-or-nothing.
//! - [`ingest`]: archive, parse, validate, dedupe files, store payments; one transaction a file.
//! - [`matching`]: payments to bills, credit or exceptions, by the rules, deterministically.
//! - [`ledger`]: `verify`, the proof that the money adds up.
//! - [`reports`]: exports for finance staff and automated checks.
//! - [`store`]: the only module with SQL (SQLite default, PostgreSQL portable).
//! - [`app`], [`cli`], [`shutdown`], [`telemetry`]: the edges.
//! - [`gen`]: synthetic data sets for benchmarks and soak tests.
//! - [`banksim`]: a partner bank's HTTPS file service, simulated, for tests and demos.

pub mod api;
pub mod app;
pub mod banksim;
pub mod billing;
pub mod cli;
pub mod config;
pub mod domain;
pub mod dunning;
pub mod formats;
pub mod gen;
pub mod ingest;
pub mod ledger;
pub mod matching;
pub mod metrics;
pub mod partner;
pub mod reports;
pub mod scheduler;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod workbench;
