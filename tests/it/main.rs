//! Integration tests: one binary, the real application on a real SQLite file (and a real
//! PostgreSQL database where noted), real files, the real CLI binary.

mod billing;
mod cli;
mod corpus;
mod crash;
mod daemon;
mod dunning;
mod faults;
mod findings;
mod formats;
mod helpers;
mod ingest;
mod late_fees;
mod layers;
mod logs;
mod matching;
mod partner;
mod partner_auth;
mod partner_http;
mod partner_mtls;
mod recompute;
mod render;
mod reports;
mod scenario;
mod security;
mod suggest;
mod systemd;
mod ui;
mod users;
mod verify;
mod workbench;
