//! `billrecon partners`: credentials of partner banks on the partner API (`/partner/v1`), for
//! the operator on the server. Changes are audited with the actor `cli:$USER`.

use crate::api::partner::auth;
use crate::app::App;
use crate::reports::{TableFormat, TableWriter};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum PartnersCmd {
    /// Issue a credential for a bank (in the config, with a `[bank.partner]` table); prints
    /// its token once (it cannot be shown again). The bank's other credentials stay valid.
    Token { bank: String },
    /// Credentials (revoked ones too): id, bank, created, last used, revoked. Never a token.
    List {
        /// Only this bank's.
        #[arg(long)]
        bank: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// Revoke one credential of a bank (`--id`), or all of them.
    Revoke {
        bank: String,
        /// The credential's id (from `partners list`); absent: every credential of the bank.
        #[arg(long)]
        id: Option<i64>,
    },
}

/// The actor of CLI changes in the audit trail.
fn actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

pub async fn run(app: &App, cmd: PartnersCmd) -> anyhow::Result<i32> {
    match cmd {
        PartnersCmd::Token { bank } => {
            let (id, token) = auth::issue_credential(app, &bank, &actor()).await?;
            println!("{token}");
            eprintln!(
                "new partner API credential {id} for bank {bank}; this token is shown only now \
                 and cannot be shown again: hand it to the bank over a secure channel"
            );
        }
        PartnersCmd::Revoke { bank, id } => {
            let n = auth::revoke_credentials(&app.store, &bank, id, &actor()).await?;
            println!("bank {bank}: {n} credential(s) revoked");
        }
        PartnersCmd::List { bank, format } => {
            let mut conn = app.store.pool().acquire().await?;
            let rows = crate::store::partners::list(&mut conn, bank.as_deref()).await?;
            let mut w = TableWriter::new(
                std::io::stdout().lock(),
                format,
                &[
                    "id",
                    "bank",
                    "created_by",
                    "created_at",
                    "last_used_at",
                    "revoked_at",
                ],
            )?;
            for r in rows {
                w.row(vec![
                    Some(r.id.to_string()),
                    Some(r.bank_id),
                    Some(r.created_by),
                    Some(r.created_at),
                    r.last_used_at,
                    r.revoked_at,
                ])?;
            }
            w.finish()?;
        }
    }
    Ok(0)
}
