//! The command line: parse, then call the use-cases in [`crate::app`]. Output for people and
//! scripts goes to stdout; logs go to stderr. Errors are reported once, with their causes, by
//! `main`.

use crate::app::{config_path, App};
use crate::config::Config;
use crate::ingest::{IngestError, IngestOutcome};
use crate::reports::{TableFormat, TableWriter};
use crate::store::export;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

mod exceptions;
mod partners;
mod users;

#[derive(Parser, Debug)]
#[command(
    name = "billrecon",
    version,
    about = "Match partner-bank payments to utility bills and prove the money adds up"
)]
pub struct Cli {
    /// Config file (default: $BILLRECON_CONFIG, else config/billrecon.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: each bank pulled on its schedule (inbox or HTTPS), billing exports
    /// imported, payments matched, HTTP /healthz /readyz /metrics; until Ctrl-C/SIGTERM.
    Run,
    /// Validate the config (keys, schedules, secrets files, data directory, database) and exit.
    CheckConfig,
    /// The notice outbox.
    Notices {
        #[command(subcommand)]
        cmd: NoticesCmd,
    },
    /// Collection reminders.
    Dunning {
        #[command(subcommand)]
        cmd: DunningCmd,
    },
    /// Partner banks.
    Banks {
        #[command(subcommand)]
        cmd: BanksCmd,
    },
    /// Customer master.
    Customers {
        #[command(subcommand)]
        cmd: ImportCmd,
    },
    /// Users and tokens of the finance HTTP API.
    Users {
        #[command(subcommand)]
        cmd: users::UsersCmd,
    },
    /// Credentials of partner banks on the partner API (/partner/v1).
    Partners {
        #[command(subcommand)]
        cmd: partners::PartnersCmd,
    },
    /// Outstanding bills.
    Bills {
        #[command(subcommand)]
        cmd: ImportCmd,
    },
    /// Ingest bank files by hand (archive, parse, validate, dedupe, store, match).
    Ingest {
        /// The bank the files come from (an `id` of a `[[bank]]` in the config).
        #[arg(long)]
        bank: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Match every pending payment.
    Match,
    /// The exceptions queue.
    Exceptions {
        #[command(subcommand)]
        cmd: exceptions::ExceptionsCmd,
    },
    /// The audit trail of the exceptions workbench (append-only), for a payment, a bill or
    /// all of it.
    Audit {
        #[arg(long)]
        payment: Option<i64>,
        #[arg(long)]
        bill: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export what happened, as CSV (default) or JSON.
    Export {
        what: ExportWhat,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write every report of a day (CSV and JSON) to DIR/YYYY/MM/DD with a manifest of
    /// SHA-256 sums, replacing that day's earlier set as a whole.
    Publish {
        /// The business day (YYYY-MM-DD); yesterday when absent.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Default: `reports.dir` of the config.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Reports for finance staff and banks.
    Report {
        what: crate::reports::ReportKind,
        /// The business day (YYYY-MM-DD); the settlement defaults to yesterday, the others
        /// to today.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReportFormat,
        /// Write to this file instead of stdout (required for xlsx).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Start CSV with a UTF-8 byte-order mark (for Excel).
        #[arg(long)]
        bom: bool,
    },
    /// Prove that the money adds up; exits 1 if it does not.
    Verify {
        #[arg(long, value_enum, default_value = "text")]
        format: VerifyFormat,
    },
    /// Print a bank file as the normalized statement (JSON) without storing anything.
    Parse {
        file: PathBuf,
        /// camt052, camt053, camt054, mt940, mt942, bai2, text or auto (plain, .gz or .zip).
        #[arg(long, default_value = "auto")]
        format: String,
        /// Read the file as this configured bank does (its format and, for `text`, its layout).
        #[arg(long)]
        bank: Option<String>,
    },
    /// Write a coherent synthetic data set (customers.csv, bills.csv, camt.054 files).
    Gen(crate::gen::GenArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Serve a folder of bank files over the banks' HTTPS listing protocol, for tests and
    /// demos (`GET /files?since=`, `GET /files/{name}`; failures on demand with
    /// `POST /_sim/fail?mode=500|hang|cut|badbody&count=N[&file=PATTERN]`).
    BankSim(BankSimArgs),
}

#[derive(clap::Args, Debug)]
pub struct BankSimArgs {
    /// The folder whose files are served (files added later appear in later listings).
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8441")]
    pub addr: std::net::SocketAddr,
    /// Require this bearer token, read from a file.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate (PEM) ...
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum NoticesCmd {
    /// The notice outbox, newest first.
    List {
        /// Only notices in this status (queued, sent, failed, dead, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// Deliver what is due now through the configured gateway (the daemon does this itself).
    Deliver,
}

#[derive(Subcommand, Debug)]
pub enum DunningCmd {
    /// Queue the notices and manager tasks of a day's plan (the daemon does this on
    /// `dunning.schedule`).
    Run {
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// A customer manager acknowledges a key account's stage (the last stage needs it before
    /// the customer gets the disconnection warning).
    Ack {
        #[arg(long)]
        account: String,
        #[arg(long)]
        stage: String,
        /// The manager's id.
        #[arg(long)]
        by: String,
    },
    /// Waive the late fee of a bill (a supervisor's decision, recorded with its reason).
    Waive {
        #[arg(long)]
        bill: String,
        /// Who decides: a user with the supervisor role (`billrecon users add`).
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
    /// What would be sent on a day and why each other overdue bill gets nothing (no side
    /// effects): one row per overdue bill.
    Plan {
        /// The day to plan for (YYYY-MM-DD); today when absent.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum BanksCmd {
    /// Each bank's last run, next run, health, checks policy and stored findings.
    Status {
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// The failed checks stored with ingested files, newest first.
    Findings {
        /// Only this bank's.
        #[arg(long)]
        bank: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import a CSV export (all rows or none).
    Import { file: PathBuf },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    Json,
    /// An Excel workbook (needs --out).
    Xlsx,
    /// One self-contained HTML page with a chart.
    Html,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ExportWhat {
    Allocations,
    Payments,
    /// The late-fee ledger: charges, their undos, waivers.
    LateFees,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum VerifyFormat {
    Text,
    Json,
}

/// Loads the config (and sets up logging from it).
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = config_path(cli.config.as_deref());
    let cfg = Config::load(&path)?;
    crate::telemetry::init(&cfg.log.format, &cfg.log.level);
    Ok(cfg)
}

/// Runs a command; the returned code is the process exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Parse { file, format, bank } => {
            let bank = match bank {
                Some(id) => {
                    let cfg = Config::load(&config_path(cli.config.as_deref()))?;
                    Some(
                        cfg.bank(id)
                            .with_context(|| format!("bank `{id}` is not in the config"))?,
                    )
                }
                None => None,
            };
            return parse(file, format, bank.as_ref());
        }
        Command::Gen(args) => {
            crate::gen::generate(args)?;
            return Ok(0);
        }
        Command::BankSim(args) => return bank_sim(args).await,
        _ => {}
    }
    let app = App::build(load_config(&cli)?).await?;
    let code = match cli.command {
        Command::Run => {
            let token = CancellationToken::new();
            let t = token.clone();
            tokio::spawn(async move {
                crate::shutdown::signal().await;
                t.cancel();
            });
            tracing::info!(database = %crate::store::redact(&app.config.storage.database_url), "billrecon running; Ctrl-C to stop");
            crate::scheduler::run(std::sync::Arc::new(app), token).await?;
            return Ok(0);
        }
        Command::CheckConfig => {
            let probe = app.config.storage.data_dir.join(".billrecon-write-check");
            std::fs::write(&probe, b"ok")
                .and_then(|_| std::fs::remove_file(&probe))
                .with_context(|| {
                    format!(
                        "the data directory {} is not writable",
                        app.config.storage.data_dir.display()
                    )
                })?;
            app.store.ping().await?;
            app.config
                .daemon
                .metrics_token()
                .map_err(anyhow::Error::msg)?;
            println!(
                "config OK: {} bank(s), database {}, data directory {}",
                app.banks.len(),
                crate::store::redact(&app.config.storage.database_url),
                app.config.storage.data_dir.display()
            );
            0
        }
        Command::Publish { date, dir } => {
            let date = date.unwrap_or_else(|| {
                chrono::Utc::now()
                    .with_timezone(&app.config.daemon.tz())
                    .date_naive()
                    - chrono::Duration::days(1)
            });
            let dir = dir.unwrap_or_else(|| app.config.reports.dir.clone());
            let out = crate::reports::publish::publish(&app.config, &app.store, date, &dir).await?;
            println!("published {}", out.display());
            let mut failed = false;
            for r in crate::reports::deliver::deliver(&app.config.reports.post, &out, None).await {
                match r {
                    Ok(d) => println!("posted {} files to {}", d.files, d.url),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed = true;
                    }
                }
            }
            i32::from(failed)
        }
        Command::Report {
            what,
            date,
            format,
            out,
            bom,
        } => {
            let today = chrono::Utc::now()
                .with_timezone(&app.config.daemon.tz())
                .date_naive();
            let report_date = date.unwrap_or_else(|| what.default_date(today));
            let (columns, rows) = what.build(&app.config, &app.store, report_date).await?;
            if format == ReportFormat::Xlsx {
                let Some(path) = &out else {
                    anyhow::bail!("--format xlsx writes a file: give --out FILE.xlsx");
                };
                let bytes = crate::reports::xlsx::workbook(
                    what,
                    columns,
                    &rows,
                    report_date,
                    &app.config.reports.language,
                )
                .map_err(anyhow::Error::msg)?;
                std::fs::write(path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                return Ok(0);
            }
            if format == ReportFormat::Html {
                let html = crate::reports::html::report_page(
                    what,
                    report_date,
                    columns,
                    &rows,
                    &app.config.reports.language,
                );
                match &out {
                    Some(p) => std::fs::write(p, html)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                    None => print!("{html}"),
                }
                return Ok(0);
            }
            let format = if format == ReportFormat::Json {
                TableFormat::Json
            } else {
                TableFormat::Csv
            };
            let sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut w = TableWriter::with_bom(sink, format, columns, bom)?;
            for r in rows {
                w.row(r)?;
            }
            w.finish()?;
            0
        }
        Command::Dunning {
            cmd: DunningCmd::Run { date },
        } => {
            let date = date.unwrap_or_else(|| {
                chrono::Utc::now()
                    .with_timezone(&app.config.daemon.tz())
                    .date_naive()
            });
            let s = crate::dunning::notices::run(&app.config, &app.store, date).await?;
            println!("{}", serde_json::to_string(&s)?);
            0
        }
        Command::Dunning {
            cmd: DunningCmd::Ack { account, stage, by },
        } => {
            for (what, v) in [("--account", &account), ("--stage", &stage), ("--by", &by)] {
                anyhow::ensure!(
                    !v.trim().is_empty() && v.chars().count() <= 100,
                    "{what}: 1 to 100 characters"
                );
            }
            let _w = app.store.writer().await;
            let mut conn = app.store.write_pool().acquire().await?;
            crate::store::dunning::acknowledge(&mut conn, &account, &stage, &by)
                .await
                .with_context(|| format!("account {account}"))?;
            println!("stage {stage} of account {account} acknowledged by {by}");
            0
        }
        Command::Dunning {
            cmd: DunningCmd::Waive { bill, by, reason },
        } => {
            anyhow::ensure!(!reason.trim().is_empty(), "a waiver needs a reason");
            if let Some(m) = crate::workbench::resolve::comment_too_long(&reason) {
                anyhow::bail!("--reason: {m}");
            }
            let actor = crate::workbench::actor_named(&app.store, &by)
                .await?
                .with_context(|| {
                    format!("`{by}` is not an active user: add one with `billrecon users add`")
                })?;
            let w = crate::workbench::resolve::waive_late_fee(&app.store, &actor, &bill, &reason)
                .await
                .with_context(|| format!("bill {bill}"))?;
            println!(
                "{}",
                if w.waived {
                    format!(
                        "late fee of bill {} waived by {by} ({} {} owed written off)",
                        w.bill_id, w.written_off, w.currency
                    )
                } else {
                    format!("the late fee of bill {} was already waived", w.bill_id)
                }
            );
            0
        }
        Command::Notices {
            cmd: NoticesCmd::Deliver,
        } => {
            let s =
                crate::dunning::notices::deliver_due(&app.config, &app.store, chrono::Utc::now())
                    .await?;
            println!("{}", serde_json::to_string(&s)?);
            0
        }
        Command::Notices {
            cmd:
                NoticesCmd::List {
                    status,
                    limit,
                    format,
                },
        } => {
            let mut conn = app.store.pool().acquire().await?;
            let rows = crate::store::notices::list(&mut conn, status.as_deref(), limit).await?;
            let mut w = TableWriter::new(
                std::io::stdout().lock(),
                format,
                &[
                    "id",
                    "kind",
                    "account_no",
                    "bill_ids",
                    "stage",
                    "channel",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "planned_for",
                    "sent_at",
                    "cancelled_reason",
                    "text",
                ],
            )?;
            for n in rows {
                w.row(vec![
                    Some(n.id.to_string()),
                    Some(n.kind),
                    Some(n.account_no),
                    Some(n.bill_ids),
                    n.stage,
                    Some(n.channel),
                    Some(n.status),
                    Some(n.attempts.to_string()),
                    Some(n.next_attempt_at),
                    n.last_error,
                    Some(n.planned_for),
                    n.sent_at,
                    n.cancelled_reason,
                    Some(n.body),
                ])?;
            }
            w.finish()?;
            0
        }
        Command::Dunning {
            cmd: DunningCmd::Plan { date, format },
        } => {
            let date = date.unwrap_or_else(|| {
                chrono::Utc::now()
                    .with_timezone(&app.config.daemon.tz())
                    .date_naive()
            });
            let items = crate::dunning::plan(&app.config, &app.store, date).await?;
            let mut w = TableWriter::new(
                std::io::stdout().lock(),
                format,
                &[
                    "bill_id",
                    "account_no",
                    "due_on",
                    "days_overdue",
                    "outstanding",
                    "currency",
                    "late_fee",
                    "stage",
                    "action",
                    "channels",
                    "reason",
                ],
            )?;
            for i in items {
                w.row(vec![
                    Some(i.bill_id),
                    Some(i.account_no),
                    Some(i.due_on),
                    Some(i.days_overdue.to_string()),
                    Some(i.outstanding),
                    Some(i.currency),
                    Some(i.late_fee),
                    i.stage,
                    Some(i.action.as_str().to_string()),
                    Some(i.channels.join(" ")),
                    Some(i.reason),
                ])?;
            }
            w.finish()?;
            0
        }
        Command::Banks {
            cmd: BanksCmd::Status { format },
        } => {
            banks_status(&app, format).await?;
            0
        }
        Command::Banks {
            cmd:
                BanksCmd::Findings {
                    bank,
                    limit,
                    format,
                },
        } => {
            if let Some(b) = &bank {
                app.bank(b)?;
            }
            let mut conn = app.store.pool().acquire().await?;
            let rows = crate::store::files::findings(&mut conn, bank.as_deref(), limit).await?;
            let mut w = TableWriter::new(
                std::io::stdout().lock(),
                format,
                &[
                    "created_at",
                    "bank_id",
                    "file_id",
                    "file_name",
                    "statement",
                    "check",
                    "severity",
                    "line",
                    "location",
                    "declared",
                    "computed",
                    "policy",
                    "message",
                ],
            )?;
            for f in rows {
                w.row(vec![
                    Some(f.created_at),
                    Some(f.bank_id),
                    Some(f.file_id.to_string()),
                    Some(f.file_name),
                    f.statement_id.or(f.statement_seq.map(|s| format!("#{s}"))),
                    Some(f.check),
                    Some(f.severity),
                    Some(f.line.to_string()),
                    Some(f.location),
                    Some(f.declared),
                    Some(f.computed),
                    Some(f.policy),
                    Some(crate::domain::mask_accounts(&f.message)),
                ])?;
            }
            w.finish()?;
            0
        }
        Command::Customers {
            cmd: ImportCmd::Import { file },
        } => {
            let s = crate::billing::import_customers(&app.store, &file).await?;
            println!("customers {}: {s}", file.display());
            0
        }
        Command::Bills {
            cmd: ImportCmd::Import { file },
        } => {
            let s = crate::billing::import_bills_with(
                &app.store,
                &file,
                &crate::matching::FeePolicy::from_config(&app.config),
            )
            .await?;
            println!("bills {}: {s}", file.display());
            0
        }
        Command::Ingest { bank, files } => {
            let bank = app.bank(&bank)?.clone();
            let (results, summary) = app.ingest_paths(&bank, &files).await?;
            let mut code = 0;
            for r in results {
                match r.result {
                    Ok(IngestOutcome::Ingested {
                        file_id,
                        statements,
                        payments,
                        findings,
                    }) => println!(
                        "{}: ingested as file {file_id} ({statements} statements, {payments} payment lines{})",
                        r.path.display(),
                        if findings > 0 {
                            format!(", {findings} failed checks stored: see `billrecon banks findings`")
                        } else {
                            String::new()
                        }
                    ),
                    Ok(IngestOutcome::DuplicateFile { file_id }) => println!(
                        "{}: already ingested as file {file_id}; this delivery is logged and ignored",
                        r.path.display()
                    ),
                    Err(e @ IngestError::Rejected { .. }) => {
                        eprintln!("{}: REJECTED: {e}", r.path.display());
                        code = 2;
                    }
                    Err(e) => {
                        eprintln!("{}: FAILED: {e}", r.path.display());
                        code = 1;
                    }
                }
            }
            println!("{summary}");
            code
        }
        Command::Users { cmd } => users::run(&app, cmd).await?,
        Command::Partners { cmd } => partners::run(&app, cmd).await?,
        Command::Match => {
            println!("{}", app.match_pending().await?);
            0
        }
        Command::Exceptions { cmd } => exceptions::run(&app, cmd).await?,
        Command::Audit {
            payment,
            bill,
            format,
            out,
        } => exceptions::audit(&app, payment, bill, format, out).await?,
        Command::Export { what, format, out } => {
            let sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let (cols, n) = match what {
                ExportWhat::Payments => (export::PAYMENT_COLUMNS, "payments"),
                ExportWhat::Allocations => (export::ALLOCATION_COLUMNS, "allocations"),
                ExportWhat::LateFees => (export::LATE_FEE_COLUMNS, "late fees"),
            };
            let mut w = TableWriter::new(sink, format, cols)?;
            let count = match what {
                ExportWhat::Payments => export::payments(app.store.pool(), |r| w.row(r)).await?,
                ExportWhat::Allocations => {
                    export::allocations(app.store.pool(), |r| w.row(r)).await?
                }
                ExportWhat::LateFees => export::late_fees(app.store.pool(), |r| w.row(r)).await?,
            };
            w.finish()?;
            if let Some(p) = out {
                eprintln!("{count} {n} written to {}", p.display());
            }
            0
        }
        Command::Verify { format } => {
            let report = crate::ledger::verify(&app.store).await?;
            match format {
                VerifyFormat::Text => println!("{report}"),
                VerifyFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            if report.ok {
                0
            } else {
                1
            }
        }
        Command::Migrate => {
            println!("database is up to date");
            0
        }
        Command::Parse { .. } | Command::Gen(_) | Command::BankSim(_) => 0,
    };
    app.store.close().await;
    Ok(code)
}

async fn bank_sim(args: &BankSimArgs) -> anyhow::Result<i32> {
    crate::telemetry::init("text", "info");
    let bearer_token = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::banksim::SimTls {
            cert_pem: cert.clone(),
            key_pem: key.clone(),
            client_ca_pem: args.client_ca.clone(),
        }),
        _ => None,
    };
    let cfg = crate::banksim::SimConfig {
        dir: args.dir.clone(),
        bearer_token,
        basic: None,
        tls,
    };
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        crate::shutdown::signal().await;
        t.cancel();
    });
    tracing::info!(dir = %args.dir.display(), addr = %args.addr, "bank simulator serving; Ctrl-C to stop");
    crate::banksim::serve(cfg, args.addr, token)
        .await
        .with_context(|| format!("bank simulator on {}", args.addr))?;
    Ok(0)
}

async fn banks_status(app: &App, format: TableFormat) -> anyhow::Result<()> {
    let mut conn = app.store.pool().acquire().await?;
    let states = crate::store::runs::states(&mut conn).await?;
    let latest = crate::store::runs::latest(&mut conn).await?;
    let finding_counts = crate::store::files::finding_counts(&mut conn).await?;
    let mut recent = Vec::new();
    for bank in &app.banks {
        recent.extend(crate::store::files::findings(&mut conn, Some(&bank.id), 1).await?);
    }
    let threshold = i64::from(app.config.daemon.unhealthy_after);
    let mut w = TableWriter::new(
        std::io::stdout().lock(),
        format,
        &[
            "bank_id",
            "name",
            "source",
            "health",
            "consecutive_failures",
            "last_run_started",
            "last_run_outcome",
            "last_run_files",
            "last_run_payments",
            "last_run_error",
            "last_success",
            "next_run",
            "checks",
            "findings",
            "last_finding",
        ],
    )?;
    for bank in &app.banks {
        let st = states.iter().find(|s| s.bank_id == bank.id);
        let run = latest.iter().find(|r| r.bank_id == bank.id);
        let failures = st.map(|s| s.consecutive_failures).unwrap_or(0);
        let source = match &bank.source {
            None => "none (manual ingest only)",
            Some(crate::config::SourceConfig::Directory { .. }) => "directory",
            Some(crate::config::SourceConfig::Https(_)) => "https",
        };
        let next = bank.source.as_ref().and_then(|_| {
            bank.schedule
                .upcoming(app.config.daemon.tz())
                .next()
                .map(|t| {
                    t.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                })
        });
        w.row(vec![
            Some(bank.id.clone()),
            Some(bank.name.clone()),
            Some(source.into()),
            Some(
                if failures >= threshold {
                    "unhealthy"
                } else {
                    "healthy"
                }
                .into(),
            ),
            Some(failures.to_string()),
            run.map(|r| r.started_at.clone()),
            run.map(|r| r.outcome.clone()),
            run.map(|r| r.stats.files.to_string()),
            run.map(|r| r.stats.payments.to_string()),
            run.and_then(|r| r.error.clone()),
            st.and_then(|s| s.last_success_at.clone()),
            next,
            Some(bank.checks.as_str().into()),
            Some(findings_text(&finding_counts, &bank.id)),
            recent.iter().find(|f| f.bank_id == bank.id).map(|f| {
                format!(
                    "{} {} ({}): {} {} at {}, declared {}, computed {}",
                    f.created_at,
                    f.file_name,
                    f.file_id,
                    f.severity,
                    f.check,
                    f.location,
                    f.declared,
                    f.computed
                )
            }),
        ])?;
    }
    w.finish()?;
    Ok(())
}

/// `12 (balance 10, batch_count 2)`: a bank's stored findings by check.
fn findings_text(counts: &[(String, String, String, i64)], bank: &str) -> String {
    let mut per: std::collections::BTreeMap<&str, i64> = Default::default();
    for (b, check, _, n) in counts {
        if b == bank {
            *per.entry(check.as_str()).or_default() += n;
        }
    }
    let total: i64 = per.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = per.iter().map(|(c, n)| format!("{c} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

fn parse(file: &Path, format: &str, bank: Option<&crate::config::Bank>) -> anyhow::Result<i32> {
    let mut format = crate::formats::Format::parse(format).map_err(anyhow::Error::msg)?;
    if format.is_none() {
        format = bank.and_then(|b| b.format);
    }
    let layout = bank.and_then(|b| b.layout.clone());
    let name = file.display().to_string();
    let parsed = crate::formats::compressed::open_file(format, layout, file, &name)
        .map_err(|error| Box::new(crate::formats::PartialRead { read: None, error }))
        .and_then(|events| crate::formats::collect_partial(events, &name));
    let (read, error) = match parsed {
        Ok(p) => (Some(p), None),
        Err(p) => (p.read, Some(p.error)),
    };
    let policy = bank.map(|b| b.checks).unwrap_or_default();
    let out = ParseOutput::new(&name, read.as_ref(), error.as_ref(), policy, bank);
    let stdout = std::io::stdout().lock();
    let mut w = std::io::BufWriter::new(stdout);
    serde_json::to_writer_pretty(&mut w, &out)?;
    writeln!(w)?;
    w.flush()?;
    if let Some(e) = &error {
        eprintln!("{e}");
    }
    // failed checks do not fail `parse`; a syntax error does (the file cannot be ingested
    // whatever the bank's policy), even when statements before it were read
    Ok(if error.is_some() { 2 } else { 0 })
}

/// What `billrecon parse` prints: what was read, every failed check, and what ingest would do.
#[derive(serde::Serialize)]
struct ParseOutput<'a> {
    file: &'a str,
    #[serde(flatten)]
    read: Option<&'a crate::formats::ParsedFile>,
    /// When `read` is absent: nothing could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    statements: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<[(); 0]>,
    summary: ParseSummary,
    /// The syntax error reading stopped at (what was read before it is above).
    error: Option<ParseErrorOut<'a>>,
}

#[derive(serde::Serialize)]
struct ParseSummary {
    statements: usize,
    entries: usize,
    /// Failed checks of severity `error` and `warning`.
    errors: usize,
    warnings: usize,
    /// The checks policy the outcome below is for (the bank's with `--bank`, else `strict`).
    policy: &'static str,
    /// `ingested`, `ingested with findings` or `quarantined: ...`.
    ingest: String,
}

#[derive(serde::Serialize)]
struct ParseErrorOut<'a> {
    location: &'a str,
    reason: &'a str,
}

impl<'a> ParseOutput<'a> {
    fn new(
        file: &'a str,
        read: Option<&'a crate::formats::ParsedFile>,
        error: Option<&'a crate::formats::ParseError>,
        policy: crate::config::ChecksPolicy,
        bank: Option<&crate::config::Bank>,
    ) -> Self {
        use crate::formats::Severity;
        let count = |s: Severity| {
            read.map(|r| r.checks.iter().filter(|f| f.severity == s).count())
                .unwrap_or(0)
        };
        let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
        let first_error = read.and_then(|r| r.errors().next());
        let ingest = match (error, first_error, policy) {
            (Some(e), _, _) => format!("quarantined: {}: {}", e.location, e.reason),
            (None, Some(f), crate::config::ChecksPolicy::Strict) => format!(
                "quarantined{}: failed check `{}` at {} (declared {}, computed {})",
                bank.map(|b| format!(" (bank {} checks strict)", b.id))
                    .unwrap_or_default(),
                f.check,
                f.location,
                f.declared,
                f.computed
            ),
            (None, _, _) if errors + warnings > 0 => {
                format!("ingested with {} findings stored", errors + warnings)
            }
            (None, _, _) => "ingested".into(),
        };
        ParseOutput {
            file,
            read,
            statements: read.is_none().then_some([]),
            checks: read.is_none().then_some([]),
            summary: ParseSummary {
                statements: read.map(|r| r.statements.len()).unwrap_or(0),
                entries: read.map(|r| r.entries().count()).unwrap_or(0),
                errors,
                warnings,
                policy: policy.as_str(),
                ingest,
            },
            error: error.map(|e| ParseErrorOut {
                location: &e.location,
                reason: &e.reason,
            }),
        }
    }
}
