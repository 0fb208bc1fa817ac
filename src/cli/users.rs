//! `billrecon users`: users and tokens of the finance HTTP API, for the operator on the
//! server (how the first admin is made). Changes are audited with the actor `cli:$USER`.

use crate::api::auth::{self, Role};
use crate::app::App;
use crate::reports::{TableFormat, TableWriter};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Add a user; prints their API token once (it cannot be shown again).
    Add {
        name: String,
        /// viewer, clerk, supervisor or admin.
        #[arg(long)]
        role: Role,
    },
    /// Every user (revoked ones too), with active token count and last use.
    List {
        #[arg(long, value_enum, default_value = "csv")]
        format: TableFormat,
    },
    /// Revoke a user and all their tokens (the user stays listed; the name is not reused).
    Revoke { name: String },
    /// Issue another API token for a user; prints it once.
    Token { name: String },
}

/// The actor of CLI changes in the audit trail.
fn actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

const SHOWN_ONCE: &str =
    "this token is shown only now and cannot be shown again: store it somewhere safe";

pub async fn run(app: &App, cmd: UsersCmd) -> anyhow::Result<i32> {
    match cmd {
        UsersCmd::Add { name, role } => {
            let token = auth::add_user(&app.store, &name, role, &actor()).await?;
            println!("{token}");
            eprintln!("user {name} added with role {role}; {SHOWN_ONCE}");
        }
        UsersCmd::Token { name } => {
            let token = auth::issue_api_token(&app.store, &name, &actor()).await?;
            println!("{token}");
            eprintln!("new API token for {name}; {SHOWN_ONCE}");
        }
        UsersCmd::Revoke { name } => {
            let tokens = auth::revoke_user(&app.store, &name, &actor()).await?;
            println!("user {name} revoked ({tokens} token(s) revoked)");
        }
        UsersCmd::List { format } => {
            let mut conn = app.store.pool().acquire().await?;
            let users = crate::store::users::list(&mut conn).await?;
            let mut w = TableWriter::new(
                std::io::stdout().lock(),
                format,
                &[
                    "name",
                    "role",
                    "created_by",
                    "created_at",
                    "revoked_at",
                    "active_tokens",
                    "last_used_at",
                ],
            )?;
            for u in users {
                w.row(vec![
                    Some(u.name),
                    Some(u.role),
                    Some(u.created_by),
                    Some(u.created_at),
                    u.revoked_at,
                    Some(u.active_tokens.to_string()),
                    u.last_used_at,
                ])?;
            }
            w.finish()?;
        }
    }
    Ok(0)
}
