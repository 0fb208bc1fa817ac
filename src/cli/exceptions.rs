//! `billrecon exceptions ...` and `billrecon audit`: the workbench from the command line.
//! Who acts is `--by NAME`, a user of `billrecon users` whose role decides what is allowed.

use crate::app::App;
use crate::reports::{TableFormat, TableWriter};
use crate::store::export;
use crate::store::workbench::{AuditFilter, QueueFilter};
use crate::workbench::resolve::{self, Action, SplitPart};
use crate::workbench::{self, Actor};
use anyhow::{bail, Context};
use clap::Subcommand;
use rust_decimal::Decimal;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ExceptionsCmd {
    /// List exceptions with their reasons (oldest first; `queue` sorts as the workbench does).
    List {
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// The queue as the workbench shows it: key accounts first, then by amount and age.
    Queue {
        /// open (default), resolved or all
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        bank: Option<String>,
        /// Only escalated ones.
        #[arg(long)]
        escalated: bool,
    },
    /// One exception: its payment, resolutions and audit trail (JSON).
    Show { id: i64 },
    /// Resolve an exception (one of the actions), with a comment saying why.
    Resolve {
        id: i64,
        #[command(flatten)]
        who: Who,
        /// To this bill (what is left: the account's other open bills, then credit).
        #[arg(long, group = "action")]
        apply_bill: Option<String>,
        /// To this account's open bills, oldest first, then credit.
        #[arg(long, group = "action")]
        apply_account: Option<String>,
        /// BILL=AMOUNT, repeated: split across bills.
        #[arg(long, group = "action", value_parser = parse_part)]
        split: Vec<SplitPart>,
        /// With --split: the account that keeps the rest as credit.
        #[arg(long, requires = "split")]
        rest_to: Option<String>,
        /// All of it as this account's credit.
        #[arg(long, group = "action")]
        credit: Option<String>,
        /// Back to the payer (above the approval limit: proposed for a supervisor).
        #[arg(long, group = "action")]
        refund: bool,
        /// With --refund: where to (default: the payer's account in the bank file).
        #[arg(long, requires = "refund")]
        to: Option<String>,
        /// To this bill, writing off the small difference (supervisor).
        #[arg(long, group = "action")]
        write_off: Option<String>,
        /// The transaction was already counted: this copy carries no money.
        #[arg(long, group = "action")]
        reject_duplicate: bool,
    },
    /// Approve a proposed refund (a supervisor other than the proposer).
    Approve {
        resolution: i64,
        #[command(flatten)]
        who: Who,
    },
    /// Decline a proposed refund.
    Decline {
        resolution: i64,
        #[command(flatten)]
        who: Who,
    },
    /// Record that a refund was paid out.
    RefundPaid {
        resolution: i64,
        /// The payout's reference (the bank transfer's id).
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        who: Who,
    },
    /// Undo a resolution made in error (supervisor): the payment goes back to the queue.
    Reopen {
        resolution: i64,
        #[command(flatten)]
        who: Who,
    },
    /// Escalate exceptions open longer than `exceptions.escalate_after_hours`.
    Escalate,
}

#[derive(clap::Args, Debug)]
pub struct Who {
    /// The user acting (see `billrecon users`).
    #[arg(long)]
    by: String,
    /// Why (required; goes into the audit trail).
    #[arg(long)]
    comment: String,
}

fn parse_part(s: &str) -> Result<SplitPart, String> {
    let (bill, amount) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected BILL=AMOUNT"))?;
    let amount: Decimal = amount
        .trim()
        .parse()
        .map_err(|_| format!("`{amount}` is not an amount"))?;
    Ok(SplitPart {
        bill_id: bill.trim().to_string(),
        amount,
    })
}

async fn actor(app: &App, who: &Who) -> anyhow::Result<Actor> {
    workbench::actor_named(&app.store, &who.by)
        .await?
        .with_context(|| {
            format!(
                "`{}` is not an active user: add one with `billrecon users add`",
                who.by
            )
        })
}

fn print_outcome(o: &resolve::Outcome) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(o)?);
    Ok(())
}

pub async fn run(app: &App, cmd: ExceptionsCmd) -> anyhow::Result<i32> {
    match cmd {
        ExceptionsCmd::List { all, format } => {
            let stdout = std::io::stdout().lock();
            let mut w = TableWriter::new(stdout, format, export::EXCEPTION_COLUMNS)?;
            export::exceptions(app.store.pool(), all, |row| w.row(row)).await?;
            w.finish()?;
        }
        ExceptionsCmd::Queue {
            status,
            reason,
            bank,
            escalated,
        } => {
            let mut conn = app.store.pool().acquire().await?;
            let items = crate::store::workbench::queue(
                &mut conn,
                &QueueFilter {
                    status,
                    reason,
                    bank,
                    escalated: escalated.then_some(true),
                    ..Default::default()
                },
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        ExceptionsCmd::Show { id } => {
            let d = workbench::detail(&app.store, id)
                .await?
                .with_context(|| format!("no exception {id}"))?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        ExceptionsCmd::Resolve {
            id,
            who,
            apply_bill,
            apply_account,
            split,
            rest_to,
            credit,
            refund,
            to,
            write_off,
            reject_duplicate,
        } => {
            let action = if let Some(bill_id) = apply_bill {
                Action::ApplyBill { bill_id }
            } else if let Some(account_no) = apply_account {
                Action::ApplyAccount { account_no }
            } else if !split.is_empty() {
                Action::Split {
                    parts: split,
                    rest_to_account: rest_to,
                }
            } else if let Some(account_no) = credit {
                Action::Credit { account_no }
            } else if refund {
                Action::Refund { to }
            } else if let Some(bill_id) = write_off {
                Action::WriteOff { bill_id }
            } else if reject_duplicate {
                Action::RejectDuplicate
            } else {
                bail!("say what to do: --apply-bill, --apply-account, --split, --credit, --refund, --write-off or --reject-duplicate");
            };
            let a = actor(app, &who).await?;
            let o =
                resolve::resolve(&app.store, &app.config, &a, id, &action, &who.comment).await?;
            print_outcome(&o)?;
        }
        ExceptionsCmd::Approve { resolution, who } => {
            let a = actor(app, &who).await?;
            print_outcome(&resolve::approve(&app.store, &a, resolution, &who.comment).await?)?;
        }
        ExceptionsCmd::Decline { resolution, who } => {
            let a = actor(app, &who).await?;
            print_outcome(&resolve::decline(&app.store, &a, resolution, &who.comment).await?)?;
        }
        ExceptionsCmd::RefundPaid {
            resolution,
            reference,
            who,
        } => {
            let a = actor(app, &who).await?;
            print_outcome(
                &resolve::refund_paid(&app.store, &a, resolution, &reference, &who.comment).await?,
            )?;
        }
        ExceptionsCmd::Reopen { resolution, who } => {
            let a = actor(app, &who).await?;
            print_outcome(&resolve::reopen(&app.store, &a, resolution, &who.comment).await?)?;
        }
        ExceptionsCmd::Escalate => {
            let n = resolve::escalate(&app.store, &app.config, chrono::Utc::now()).await?;
            println!("{n} exception(s) escalated");
        }
    }
    Ok(0)
}

pub async fn audit(
    app: &App,
    payment: Option<i64>,
    bill: Option<String>,
    format: TableFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<i32> {
    let mut conn = app.store.pool().acquire().await?;
    let entries = crate::store::workbench::audit(
        &mut conn,
        &AuditFilter {
            payment_id: payment,
            bill_id: bill,
            ..Default::default()
        },
    )
    .await?;
    let sink: Box<dyn Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = TableWriter::new(sink, format, crate::store::workbench::AUDIT_COLUMNS)?;
    for e in entries {
        w.row(e.cells())?;
    }
    w.finish()?;
    Ok(0)
}
