//! `tx` and `fees`: read-only chain look-ups. With the daemon running they go through its
//! admin API (it holds the database that maps addresses to payments); with it stopped they
//! open the database and the Electrum server themselves.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use http::Method;
use serde_json::Value;

use super::client::ClientError;
use super::{Cli, load_config};
use crate::config::Config;
use crate::ops::OpsError;
use crate::store::{Store, StoreError};

/// Exit code: the transaction, address or payment is not known.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: the Electrum server could not be reached or refused.
pub const EXIT_ELECTRUM: u8 = 4;

/// `tx` arguments.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// A txid, an address, a payment id (`pay_…`) or a payment reference.
    pub query: String,
}

/// The database, or `None` when the running daemon holds it. A missing file is an error
/// (a wrong ELECTRUM_WALLET_PATH must not create a stray database).
pub(crate) fn open_unless_daemon(cfg: &Config) -> anyhow::Result<Option<Store>> {
    if !cfg.db_path.exists() {
        bail!(
            "ELECTRUM_WALLET_PATH: no database at {}; check the path (the daemon creates it at its first start)",
            cfg.db_path.display()
        );
    }
    match Store::open(&cfg.db_path) {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::Locked { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening database {}", cfg.db_path.display())),
    }
}

/// Either an answer, or a failure with the exit code it deserves.
enum Answer {
    Ok(Value),
    Failed { code: &'static str, message: String },
}

fn exit_for(code: &str) -> ExitCode {
    match code {
        "unknown_txid" | "not_found" => ExitCode::from(EXIT_NOT_FOUND),
        "electrum_unavailable" | "electrum_timeout" => ExitCode::from(EXIT_ELECTRUM),
        _ => ExitCode::FAILURE,
    }
}

fn ask(
    cfg: &Config,
    path: &str,
    local: impl FnOnce(&Config, &Store) -> Result<Value, OpsError>,
) -> anyhow::Result<Answer> {
    match open_unless_daemon(cfg)? {
        Some(store) => Ok(match local(cfg, &store) {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Failed {
                code: e.code(),
                message: e.to_string(),
            },
        }),
        None => {
            let client = super::access_admin_client(cfg)?;
            let r = super::runtime()?.block_on(client.call(Method::GET, path, None));
            match r {
                Ok((_, v)) => Ok(Answer::Ok(v)),
                Err(e) => match e.downcast_ref::<ClientError>() {
                    Some(ClientError::Api { code, message, .. }) => Ok(Answer::Failed {
                        code: match code.as_str() {
                            "unknown_txid" => "unknown_txid",
                            "not_found" => "not_found",
                            "electrum_unavailable" => "electrum_unavailable",
                            "electrum_timeout" => "electrum_timeout",
                            "locked_down" => "locked_down",
                            "invalid_request" => "invalid_request",
                            _ => "error",
                        },
                        message: message.clone(),
                    }),
                    _ => Err(e),
                },
            }
        }
    }
}

fn finish(as_json: bool, a: Answer, human: impl FnOnce(&Value)) -> anyhow::Result<ExitCode> {
    match a {
        Answer::Ok(v) => {
            if as_json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                human(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        Answer::Failed { code, message } => {
            if as_json {
                let v = serde_json::json!({"error": {"code": code, "message": message}});
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            eprintln!("error: {message}");
            Ok(exit_for(code))
        }
    }
}

/// `snakkaz-pay tx QUERY`.
pub fn tx(cli: &Cli, args: &TxArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let path = format!("/api/admin/tx/{}", super::encode_segment(&args.query));
    let q = args.query.clone();
    let a = ask(&cfg, &path, move |cfg, store| {
        crate::ops::txinfo::lookup(cfg, store, &q)
            .map(|r| serde_json::to_value(r).unwrap_or_default())
    })?;
    finish(cli.json, a, print_tx)
}

/// `snakkaz-pay fees`.
pub fn fees(cli: &Cli) -> anyhow::Result<ExitCode> {
    let cfg = load_config(cli)?;
    let a = ask(&cfg, "/api/admin/fees", |cfg, store| {
        crate::ops::fees::lookup(cfg, store).map(|r| serde_json::to_value(r).unwrap_or_default())
    })?;
    finish(cli.json, a, print_fees)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_tx(v: &Value) {
    println!(
        "{} {} (server {}, tip {})",
        s(&v["kind"]),
        s(&v["query"]),
        s(&v["server"]),
        s(&v["tip_height"])
    );
    let txs = v["transactions"].as_array().cloned().unwrap_or_default();
    if txs.is_empty() {
        println!("no transactions");
    }
    for t in &txs {
        println!();
        println!("txid:          {}", s(&t["txid"]));
        if t["confirmations"] == 0 {
            println!("confirmations: 0 (in the mempool)");
        } else {
            println!(
                "confirmations: {} (block {} {})",
                s(&t["confirmations"]),
                s(&t["block_height"]),
                s(&t["block_hash"])
            );
        }
        println!(
            "fee:           {} sat, {} sat/vB",
            s(&t["fee_sat"]),
            s(&t["fee_rate_sat_vb"])
        );
        println!(
            "size:          {} vB ({} bytes, {} WU), {} inputs",
            s(&t["vsize"]),
            s(&t["size"]),
            s(&t["weight"]),
            s(&t["inputs"])
        );
        println!(
            "replaceable:   {}",
            if t["rbf"] == true {
                "yes (signals RBF)"
            } else {
                "no"
            }
        );
        for a in t["unconfirmed_ancestors"].as_array().into_iter().flatten() {
            println!(
                "  unconfirmed parent {}: fee {} sat, {} sat/vB",
                s(&a["txid"]),
                s(&a["fee_sat"]),
                s(&a["fee_rate_sat_vb"])
            );
        }
        if t["unconfirmed_ancestors"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            let pkg = t["package_fee_rate_sat_per_kvb"].as_u64();
            println!(
                "  package rate with parents: {} sat/vB",
                pkg.map_or("-".into(), crate::ops::rate::display)
            );
        }
        for o in t["outputs"].as_array().into_iter().flatten() {
            let pays = match o["payment_id"].as_str() {
                Some(id) => format!("  pays {id} ({})", s(&o["reference"])),
                None => String::new(),
            };
            println!(
                "  out {}: {} sat to {}{pays}",
                s(&o["vout"]),
                s(&o["value_sat"]),
                s(&o["address"])
            );
        }
    }
}

fn print_fees(v: &Value) {
    println!(
        "fee estimates from {} (tip {}):",
        s(&v["server"]),
        s(&v["tip_height"])
    );
    for e in v["estimates"].as_array().into_iter().flatten() {
        println!(
            "  {:>4} blocks: {} sat/vB",
            s(&e["blocks"]),
            match e["sat_vb"].as_str() {
                Some(r) => r.to_owned(),
                None => "no estimate".into(),
            }
        );
    }
    println!(
        "mempool: {} vB waiting; relay fee {} sat/vB",
        s(&v["mempool_vsize"]),
        v["relay_fee_sat_per_kvb"]
            .as_u64()
            .map_or("-".into(), crate::ops::rate::display)
    );
    for b in v["mempool_histogram"]
        .as_array()
        .into_iter()
        .flatten()
        .take(10)
    {
        println!(
            "  >= {:>8} sat/vB: {} vB",
            b["sat_per_kvb"]
                .as_u64()
                .map_or("-".into(), crate::ops::rate::display),
            s(&b["vsize"])
        );
    }
    let payments = v["unconfirmed_payments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if payments.is_empty() {
        println!("no unconfirmed payments");
    }
    for p in &payments {
        let verdict = match p["likely_soon"].as_bool() {
            Some(true) => "likely to confirm soon".to_owned(),
            Some(false) => match p["cpfp_fee_sat"].as_u64() {
                Some(f) => format!("STUCK: a CPFP child would pay {f} sat"),
                None => "stuck".to_owned(),
            },
            None => "no estimate to compare with".to_owned(),
        };
        println!(
            "{} ({}) tx {}: {} sat/vB{}; {verdict}",
            s(&p["payment_id"]),
            s(&p["reference"]),
            s(&p["txid"]),
            s(&p["package_fee_rate_sat_vb"]),
            if p["rbf"] == true { ", RBF" } else { "" },
        );
    }
}
