//! `snakkaz-pay reconcile [--fix]`. With the daemon running it asks the daemon (which
//! holds the database) slice by slice through the admin API; with it stopped it opens the
//! database and the Electrum server itself. Either way an interrupted run continues at
//! the next call, from the cursor kept in the store.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use http::Method;

use super::client::ClientError;
use super::ops::{EXIT_ELECTRUM, open_unless_daemon};
use super::{Cli, load_config};
use crate::ops::reconcile::{self, Report};

/// Exit code: differences were found and not fixed (run with `--fix`).
pub const EXIT_DIFFERENCES: u8 = 6;
/// Exit code: the chain was compared, the Supabase rows could not be.
pub const EXIT_SINK: u8 = 5;
/// Most slices one call runs (a run that needs more continues at the next call).
const MAX_SLICES: u32 = 10_000;

/// `reconcile` arguments.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Apply the lifecycle's answer to each difference (and re-send stale Supabase rows),
    /// recording a "reconciled" event with the evidence.
    #[arg(long)]
    pub fix: bool,
}

/// A slice's failure: its machine code and message.
struct Failure {
    code: String,
    message: String,
}

/// `snakkaz-pay reconcile`.
pub fn run(cli: &Cli, args: &ReconcileArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let store = open_unless_daemon(&cfg)?;
    let client = match &store {
        Some(_) => None,
        None => Some(super::access_admin_client(&cfg)?),
    };
    let rt = super::runtime()?;
    let path = if args.fix {
        "/api/admin/reconcile/fix"
    } else {
        "/api/admin/reconcile"
    };
    let mut slices = 0u32;
    let outcome: Result<Report, Failure> = loop {
        slices += 1;
        let r = match (&store, &client) {
            (Some(store), _) => reconcile::run_slice(&cfg, store, args.fix).map_err(|e| Failure {
                code: e.code().to_owned(),
                message: e.to_string(),
            }),
            (None, Some(client)) => match rt.block_on(client.call(Method::POST, path, None)) {
                Ok((_, v)) => Ok(serde_json::from_value::<Report>(v)
                    .context("the daemon's reconcile answer is not a report")?),
                Err(e) => match e.downcast_ref::<ClientError>() {
                    Some(ClientError::Api { code, message, .. }) => Err(Failure {
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    _ => return Err(e),
                },
            },
            (None, None) => unreachable!("either the database or the daemon"),
        };
        match r {
            Ok(report) if report.complete || slices >= MAX_SLICES => break Ok(report),
            Ok(report) => {
                if !cli.json {
                    eprintln!(
                        "reconcile: {} of {} payment(s) checked, {} difference(s) so far…",
                        report.checked, report.total, report.differences_found
                    );
                }
            }
            Err(f) => break Err(f),
        }
    };
    match outcome {
        Ok(report) => finish(cli.json, &report),
        Err(f) => {
            let message = format!(
                "{}; the run stopped and continues where it left off at the next `snakkaz-pay reconcile`",
                f.message
            );
            if cli.json {
                let v = serde_json::json!({"error": {"code": f.code, "message": message}});
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            eprintln!("error: {message}");
            Ok(match f.code.as_str() {
                "electrum_unavailable" | "electrum_timeout" => ExitCode::from(EXIT_ELECTRUM),
                _ => ExitCode::FAILURE,
            })
        }
    }
}

fn finish(as_json: bool, r: &Report) -> anyhow::Result<ExitCode> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        print_report(r);
    }
    Ok(if !r.complete {
        ExitCode::FAILURE
    } else if r.unfixed > 0 {
        ExitCode::from(EXIT_DIFFERENCES)
    } else if r.sink_error.is_some() {
        ExitCode::from(EXIT_SINK)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(r: &Report) {
    println!(
        "reconciled {} of {} payment(s) against {} (tip {}){}",
        r.checked,
        r.total,
        r.server.as_deref().unwrap_or("-"),
        r.tip_height.map_or("-".into(), |t| t.to_string()),
        if r.complete { "" } else { " — NOT complete" }
    );
    match (&r.sink_error, r.sink.as_str()) {
        (Some(e), _) => println!("Supabase rows NOT compared: {e}"),
        (None, "compared") => println!("Supabase rows compared"),
        _ => println!("no Supabase sink configured"),
    }
    if r.differences_found == 0 {
        println!("no differences: the store agrees with the chain");
        return;
    }
    println!(
        "{} difference(s), {} fixed{}",
        r.differences_found,
        r.fixed,
        if r.unfixed > 0 {
            " (run `snakkaz-pay reconcile --fix` to apply the lifecycle's answer)"
        } else {
            ""
        }
    );
    for d in &r.differences {
        println!(
            "  {} ({}): {} — store {} {} sat, {} {} {} sat{}",
            d.payment_id,
            d.reference,
            d.kind.as_str(),
            d.store_status,
            d.store_received_sat,
            if d.kind.as_str().starts_with("sink") {
                "Supabase"
            } else {
                "chain"
            },
            d.other_status,
            d.other_received_sat,
            if d.fixed { " [fixed]" } else { "" }
        );
        println!("      {}", d.evidence);
    }
    if (r.differences.len() as u64) < r.differences_found {
        println!(
            "  … and {} more (the counts are exact)",
            r.differences_found - r.differences.len() as u64
        );
    }
}
