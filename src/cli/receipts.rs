//! `receipts`: money no open payment counts, and assigning it to a payment.

use std::process::ExitCode;

use clap::Subcommand;
use http::Method;
use serde_json::{Value, json};

use super::{Cli, daemon_client, load_config};

/// `receipts` subcommands; without one, the receipts are listed.
#[derive(Debug, Subcommand)]
pub enum ReceiptsCmd {
    /// Count a receipt for a payment (recorded in its history and the audit log; the
    /// payment's amounts and status do not change).
    Assign {
        /// The receipt, as `txid:vout`.
        outpoint: String,
        /// The payment it belongs to.
        payment_id: String,
        /// Why (kept with the assignment).
        #[arg(long)]
        note: Option<String>,
    },
}

/// Lists receipts (exit 0 when none is waiting, 2 when some are) or assigns one.
pub fn run(cli: &Cli, cmd: Option<&ReceiptsCmd>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = daemon_client(&cfg)?;
        match cmd {
            None => {
                let (_, v) = client.call(Method::GET, "/api/receipts", None).await?;
                let list = v["receipts"].as_array().cloned().unwrap_or_default();
                let open = list.iter().filter(|r| r_state(r) == "unassigned").count();
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print_list(&list);
                }
                Ok(if open > 0 {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Some(ReceiptsCmd::Assign {
                outpoint,
                payment_id,
                note,
            }) => {
                let path = format!("/api/admin/receipts/{outpoint}/assign");
                let body = json!({ "payment_id": payment_id, "note": note });
                let (_, v) = client.call(Method::POST, &path, Some(body)).await?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!(
                        "receipt {outpoint} ({} sat) assigned to payment {payment_id}",
                        v["receipt"]["amount_sat"]
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn r_state(r: &Value) -> &str {
    if r["gone"].as_bool() == Some(true) {
        "gone"
    } else if r["assigned_to"].is_string() {
        "assigned"
    } else {
        "unassigned"
    }
}

fn print_list(list: &[Value]) {
    if list.is_empty() {
        println!("no receipts: every satoshi the wallet received is counted by a payment");
        return;
    }
    println!(
        "{:<68} {:>14} {:<11} {:<8} {:<15} address",
        "outpoint", "amount", "state", "height", "cause"
    );
    for r in list {
        println!(
            "{:<68} {:>10} sat {:<11} {:<8} {:<15} {}{}",
            r["outpoint"].as_str().unwrap_or("?"),
            r["amount_sat"],
            r_state(r),
            r["height"]
                .as_u64()
                .map_or("mempool".into(), |h| h.to_string()),
            r["cause"].as_str().unwrap_or("?"),
            r["address"].as_str().unwrap_or("?"),
            r["assigned_to"]
                .as_str()
                .map(|p| format!(" → {p}"))
                .unwrap_or_default(),
        );
    }
}
