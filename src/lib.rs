//! billrecon: matches partner-bank payments to a utility's bills and proves the money adds up.
//!
//! # The flow
//! bank file or real-time posting -> archive -> normalized statement -> payments -> matching
//! (allocations to bills, customer credit, or the exceptions queue) -> dunning (who is reminded,
//! never someone who has paid) -> reports and the proof (`verify`). People resolve what the
//! machine would not decide in the workbench; partner banks post and reconcile online.
//!
//! # Layers
//! Imports point down only: a module may use modules of its own layer (without cycles) or of
//! any layer below, never one above. `tests/it/layers.rs` reads this list and fails the build's
//! tests when an import points up, when a module is missing here, or when two modules import
//! each other. Each line: `layer N: module (what it owns), ...`.
//!
//! - layer 0: [`domain`] (money, currencies, account numbers, bill ids, RF references, the
//!   normalized statement; pure, no I/O)
//! - layer 1: [`config`] (the typed, validated configuration, with the names it can use:
//!   formats, text layouts, report kinds, the dunning policy), [`store`] (the only module with
//!   SQL: SQLite default, PostgreSQL portable; migrations), [`shutdown`] (SIGINT/SIGTERM),
//!   [`telemetry`] (the tracing subscriber)
//! - layer 2: [`formats`] (one module per bank file format, each streaming the normalized
//!   statement), [`billing`] (the billing system's exports, all rows or none), [`ingest`]
//!   (sources, archive, parse, dedupe, store; one transaction a file), [`matching`] (payments
//!   to bills, credit or exceptions, deterministically), [`ledger`] (`verify`: the proof that
//!   the money adds up), [`dunning`] (reminders, late fees, notices, field operations),
//!   [`reports`] (what finance staff sign and banks check), [`workbench`] (people's
//!   resolutions of exceptions, suggestions, the audit trail), [`partner`] (real-time postings,
//!   reversals, the end-of-day comparison), [`metrics`] (the Prometheus registry), [`gen`]
//!   (synthetic data sets)
//! - layer 3: [`app`] (the use-cases wired together; the daemon's shared state), [`banksim`]
//!   (a bank's HTTPS file service, simulated, for tests and demos)
//! - layer 4: [`api`] (HTTP: health, metrics, the finance API and web pages, the partner API),
//!   [`scheduler`] (the daemon's tasks on their schedules), [`cli`] (the commands)

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
