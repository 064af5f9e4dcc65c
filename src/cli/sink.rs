//! `snakkaz-pay sink schema|resync`: the downstream schema and re-queueing everything.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use http::Method;
use serde_json::json;

use crate::config::Config;
use crate::store::{Store, StoreError};

/// `sink` subcommands.
#[derive(Debug, Subcommand)]
pub enum SinkCmd {
    /// Print the SQL schema of the Supabase tables (idempotent; what the sink applies).
    Schema,
    /// Re-queue every payment for the sink, for a replaced or restored downstream database.
    Resync,
}

/// Runs a `sink` subcommand.
pub fn run(cli: &super::Cli, cmd: &SinkCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SinkCmd::Schema => {
            print!("{}", crate::sink::schema::script());
            Ok(ExitCode::SUCCESS)
        }
        SinkCmd::Resync => resync(&super::load_config(cli)?, cli.json),
    }
}

fn resync(cfg: &Config, as_json: bool) -> anyhow::Result<ExitCode> {
    if !cfg.db_path.exists() {
        anyhow::bail!(
            "ELECTRUM_WALLET_PATH: no database at {}",
            cfg.db_path.display()
        );
    }
    // The store's file lock tells whether a daemon holds the database: if it does, the
    // daemon does the work; if not, the file is changed directly.
    let (pending, via) = match Store::open(&cfg.db_path) {
        Ok(store) => {
            store
                .commit_blocking(crate::sink::resync_batch("CLI, daemon stopped"))
                .context("re-queueing payments")?;
            (store.outbox_stats()?.0, "database file")
        }
        Err(StoreError::Locked { .. }) => {
            let client = super::daemon_client(cfg)?;
            let (_, body) = super::runtime()?.block_on(client.call(
                Method::POST,
                "/api/admin/sink/resync",
                None,
            ))?;
            (body["pending"].as_u64().unwrap_or(0), "running daemon")
        }
        Err(e) => {
            return Err(e).with_context(|| format!("opening {}", cfg.db_path.display()));
        }
    };
    if as_json {
        println!(
            "{}",
            json!({"resync": "queued", "pending": pending, "via": via})
        );
    } else {
        println!(
            "every payment re-queued for the Supabase sink through the {via}; {pending} change(s) pending"
        );
    }
    Ok(ExitCode::SUCCESS)
}
