//! `snakkaz-pay archive [--older-than 90d] [--dry-run]`. With the daemon running it asks
//! the daemon (which holds the database) through the admin API; with it stopped it opens
//! the database itself. Either way a Supabase move that failed is retried by the next run.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use http::Method;

use super::client::ClientError;
use super::ops::open_unless_daemon;
use super::reconcile::EXIT_SINK;
use super::{Cli, load_config};
use crate::ops::archive::{self, ArchiveReport};

/// `archive` arguments.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Archive payments unchanged for longer than this: a number and a unit (s, m, h, d,
    /// w), e.g. 90d.
    #[arg(long, value_name = "AGE", default_value = "90d", value_parser = archive::parse_age)]
    pub older_than: Duration,
    /// Only list what would be archived; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `snakkaz-pay archive`.
pub fn run(cli: &Cli, args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let outcome: Result<ArchiveReport, (String, String)> = match open_unless_daemon(&cfg)? {
        Some(store) => archive::run(&cfg, &store, args.older_than, args.dry_run)
            .map_err(|e| (e.code().to_owned(), e.to_string())),
        None => {
            let client = super::access_admin_client(&cfg)?;
            let path = format!(
                "/api/admin/archive/{}{}",
                args.older_than.as_secs(),
                if args.dry_run { "/dry-run" } else { "" }
            );
            match super::runtime()?.block_on(client.call(Method::POST, &path, None)) {
                Ok((_, v)) => Ok(serde_json::from_value(v)
                    .context("the daemon's archive answer is not a report")?),
                Err(e) => match e.downcast_ref::<ClientError>() {
                    Some(ClientError::Api { code, message, .. }) => {
                        Err((code.clone(), message.clone()))
                    }
                    _ => return Err(e),
                },
            }
        }
    };
    match outcome {
        Ok(r) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_report(&r);
            }
            Ok(if r.sink_error.is_some() {
                ExitCode::from(EXIT_SINK)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err((code, message)) => {
            if cli.json {
                let v = serde_json::json!({"error": {"code": code, "message": message}});
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            eprintln!("error: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_report(r: &ArchiveReport) {
    let statuses: Vec<&str> = r.statuses.iter().map(|s| s.as_str()).collect();
    println!(
        "{} {} {} payment(s) unchanged for {} s ({})",
        if r.dry_run {
            "would archive"
        } else {
            "archived"
        },
        r.archived,
        statuses.join("/"),
        r.older_than_secs,
        crate::clock::rfc3339(r.before)
    );
    for p in &r.payments {
        println!(
            "  {} ({}): {} {} sat, last changed {}",
            p.id,
            p.reference,
            p.status,
            p.received_sat,
            crate::clock::rfc3339(p.updated_at)
        );
    }
    if (r.payments.len() as u64) < r.archived {
        println!("  … and {} more", r.archived - r.payments.len() as u64);
    }
    println!("{} payment(s) in the archive", r.archive_total);
    match (r.sink.as_str(), &r.sink_error) {
        (_, Some(e)) => println!(
            "Supabase rows NOT moved: {e}; {} pending, moved by the next `snakkaz-pay archive`",
            r.sink_pending
        ),
        ("moved", None) => println!(
            "Supabase: {} row(s) moved to electrum_payments_archive",
            r.sink_moved
        ),
        ("dry_run", None) => {}
        _ => println!("no Supabase sink configured"),
    }
}
