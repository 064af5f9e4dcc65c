//! The Electrum 4.3 daemon methods a payment integration uses, answered from snakkaz-pay's
//! wallet and payments. Requests are payments; addresses are never handed out twice.

use std::str::FromStr;

use bdk_wallet::KeychainKind;
use bdk_wallet::bitcoin::{Address, ScriptBuf, Txid};
use bdk_wallet::chain::ChainPosition;
use serde_json::{Value, json};

use super::rpc_shapes::{self, RequestView, status};
use super::slip132::AccountKey;
use super::{rpc_fees, rpc_history};
use crate::app::{App, AppError, CreatePayment};
use crate::payments::{Payment, Status};
use crate::store::{ListQuery, WriteBatch};

/// The Electrum version whose method names and shapes this endpoint follows.
pub const ELECTRUM_VERSION: &str = "4.3.4";
/// Most requests `list_requests` returns: the newest (the API's page limit), oldest first.
const MAX_LISTED_REQUESTS: usize = 500;

/// Methods answered here.
const METHODS: &[&str] = &[
    "version",
    "is_synchronized",
    "getbalance",
    "getunusedaddress",
    "add_request",
    "get_request",
    "list_requests",
    "delete_request",
    "getaddresshistory",
    "getaddressbalance",
    "get_tx_status",
    "validateaddress",
    "ismine",
    "getmpk",
    "listaddresses",
    "gettransaction",
    "listunspent",
    "getfeerate",
    "onchain_history",
];
/// Methods that need private keys: answered with Electrum's watch-only error.
const NEEDS_KEYS: &[&str] = &[
    "getprivatekeys",
    "getprivatekeyforpath",
    "signmessage",
    "signtransaction",
    "payto",
    "paytomany",
    "decrypt",
    "dumpprivkeys",
];
/// Whether `method` gets an answer (others are Electrum's "Invalid Request").
pub fn is_known(method: &str) -> bool {
    METHODS.contains(&method) || NEEDS_KEYS.contains(&method) || method == "getseed"
}

/// Positional or named argument `pos`/`name`.
fn arg<'a>(params: &'a Value, pos: usize, name: &str) -> Option<&'a Value> {
    match params {
        Value::Array(a) => a.get(pos),
        Value::Object(o) => o.get(name),
        _ => None,
    }
    .filter(|v| !v.is_null())
}

fn arg_str<'a>(params: &'a Value, pos: usize, name: &str) -> Result<&'a str, String> {
    arg(params, pos, name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing argument: {name}"))
}

fn arg_bool(params: &Value, pos: usize, name: &str) -> bool {
    arg(params, pos, name).is_some_and(|v| v.as_bool().unwrap_or(false))
}

/// What the endpoint keeps between calls: fee estimates and block positions fetched from
/// the Electrum server.
#[derive(Debug, Default)]
pub struct Cache {
    fees: rpc_fees::Cache,
    facts: rpc_history::ServerFacts,
}

/// Runs `method`; `Err` is the message of Electrum's error envelope.
pub async fn call(app: &App, cache: &Cache, method: &str, params: &Value) -> Result<Value, String> {
    if NEEDS_KEYS.contains(&method) {
        return Err("This is a watching-only wallet".to_owned());
    }
    if method == "getseed" {
        return Err("This wallet has no seed words".to_owned());
    }
    let now = crate::clock::now();
    match method {
        "version" => Ok(json!(ELECTRUM_VERSION)),
        "is_synchronized" => {
            let s = app.status().map_err(|e| e.to_string())?;
            Ok(json!(
                s.electrum.connected && s.electrum.tip_height == Some(s.wallet.tip_height)
            ))
        }
        "getbalance" => {
            let b = app.with_wallet(|w| w.balance());
            let mut out = json!({"confirmed": rpc_shapes::btc_decimal(b.confirmed.to_sat())});
            let u = (b.trusted_pending + b.untrusted_pending).to_sat();
            if u > 0 {
                out["unconfirmed"] = rpc_shapes::btc_decimal(u).into();
            }
            if b.immature.to_sat() > 0 {
                out["unmatured"] = rpc_shapes::btc_decimal(b.immature.to_sat()).into();
            }
            Ok(out)
        }
        "getunusedaddress" => {
            // Unlike Electrum, a new address every time: one handed out is never reused.
            let (_, address, cs) = app.with_wallet(crate::wallet::reveal_next);
            app.store
                .commit(WriteBatch {
                    wallet: cs,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!(address.to_string()))
        }
        "add_request" => add_request(app, params, now).await,
        "get_request" => {
            let id = arg_str(params, 0, "request_id")?;
            match app.payment(id) {
                Ok((p, _)) => Ok(export(app, &p, now)),
                Err(AppError::NotFound(_)) => Err("Request not found".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        }
        "list_requests" => {
            let filter = if arg_bool(params, 0, "pending") {
                Some(status::UNPAID)
            } else if arg_bool(params, 1, "expired") {
                Some(status::EXPIRED)
            } else if arg_bool(params, 2, "paid") {
                Some(status::PAID)
            } else {
                None
            };
            let (mut list, _) = app
                .list_payments(&ListQuery {
                    limit: MAX_LISTED_REQUESTS,
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?;
            // Electrum lists requests oldest first.
            list.reverse();
            Ok(Value::Array(
                list.iter()
                    .filter(|p| filter.is_none_or(|f| electrum_status(p) == f))
                    .map(|p| export(app, p, now))
                    .collect(),
            ))
        }
        // snakkaz-pay keeps every payment (its address stays retired); Electrum answers null.
        "delete_request" => {
            let _ = arg_str(params, 0, "request_id")?;
            Ok(Value::Null)
        }
        "getaddresshistory" => {
            let address = own_address(app, arg_str(params, 0, "address")?)?;
            Ok(address_history(app, &address))
        }
        "getaddressbalance" => {
            let address = own_address(app, arg_str(params, 0, "address")?)?;
            let (confirmed, unconfirmed) = address_balance(app, &address);
            Ok(json!({
                "confirmed": rpc_shapes::btc_decimal(confirmed),
                "unconfirmed": rpc_shapes::btc_decimal(unconfirmed),
            }))
        }
        "get_tx_status" => {
            let raw = arg_str(params, 0, "txid")?;
            let txid = parse_txid(raw)?;
            app.with_wallet(|w| {
                let tip = w.local_chain().tip().height();
                let tx = w
                    .get_tx(txid)
                    .ok_or_else(|| "Transaction not in wallet.".to_owned())?;
                let conf = match tx.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => {
                        tip.saturating_sub(anchor.block_id.height) + 1
                    }
                    ChainPosition::Unconfirmed { .. } => 0,
                };
                Ok(json!({"confirmations": conf}))
            })
        }
        "gettransaction" => {
            let txid = parse_txid(arg_str(params, 0, "txid")?)?;
            app.with_wallet(|w| {
                w.get_tx(txid)
                    .map(|t| json!(bdk_wallet::bitcoin::consensus::encode::serialize_hex(&*t.tx_node.tx)))
                    .ok_or_else(|| "Transaction not found.".to_owned())
            })
        }
        "validateaddress" => {
            let a = arg_str(params, 0, "address")?;
            Ok(json!(parse_address(app, a).is_some()))
        }
        "ismine" => {
            let a = arg_str(params, 0, "address")?;
            Ok(json!(parse_address(app, a).is_some_and(|a| {
                app.with_wallet(|w| w.is_mine(a.script_pubkey()))
            })))
        }
        "getmpk" => AccountKey::from_descriptor(&app.cfg.descriptor)
            .map(|k| json!(k.to_slip132()))
            .ok_or_else(|| {
                "the configured descriptor is not a single-key pkh/sh(wpkh)/wpkh account; it has no Electrum master public key".to_owned()
            }),
        "listaddresses" => {
            let receiving = arg_bool(params, 0, "receiving");
            let change = arg_bool(params, 1, "change");
            let keychains: &[KeychainKind] = match (receiving, change) {
                (true, false) => &[KeychainKind::External],
                (false, true) => &[KeychainKind::Internal],
                _ => &[KeychainKind::External, KeychainKind::Internal],
            };
            let network = app.cfg.network;
            Ok(app.with_wallet(|w| {
                let mut out = Vec::new();
                for k in keychains {
                    for (_, spk) in w.spk_index().revealed_keychain_spks(*k) {
                        if let Ok(a) = Address::from_script(&spk, network) {
                            out.push(Value::String(a.to_string()));
                        }
                    }
                }
                Value::Array(out)
            }))
        }
        "listunspent" => Ok(list_unspent(app)),
        "getfeerate" => get_fee_rate(app, cache, params).await,
        "onchain_history" => onchain_history(app, cache, params, now).await,
        _ => Err(format!("attempting to use unregistered method: {method}")),
    }
}

/// Electrum's `getfeerate(fee_method, fee_level)` in sat/kvB, from the server's estimates
/// (fetched on a look-up session apart from the watcher's, cached a minute).
async fn get_fee_rate(app: &App, cache: &Cache, params: &Value) -> Result<Value, String> {
    let method = rpc_fees::Method::parse(arg(params, 0, "fee_method").and_then(Value::as_str))?;
    let level = match arg(params, 1, "fee_level") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(v) => return Err(format!("invalid fee_level: {v}")),
    };
    let network = app.cfg.network;
    let estimates = if network == bdk_wallet::bitcoin::Network::Regtest || !method.needs_server() {
        rpc_fees::Estimates::default()
    } else if let Some(e) = cache.fees.get() {
        e
    } else {
        let cfg = app.cfg.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch_estimates(&cfg))
            .await
            .map_err(|e| e.to_string())??;
        cache.fees.put(fetched.clone());
        fetched
    };
    rpc_fees::fee_rate(network, method, level.as_deref(), &estimates).map(|r| json!(r))
}

fn fetch_estimates(cfg: &crate::config::Config) -> Result<rpc_fees::Estimates, String> {
    let session = crate::ops::open_lookup(cfg).map_err(|e| e.to_string())?;
    let targets: Vec<usize> = rpc_fees::ETA_TARGETS.iter().map(|&t| t as usize).collect();
    let rates = session.estimate_fees(&targets).map_err(|e| e.to_string())?;
    let histogram = session.fee_histogram().map_err(|e| e.to_string())?;
    Ok(rpc_fees::Estimates {
        by_target: rpc_fees::ETA_TARGETS
            .iter()
            .zip(rates)
            .map(|(&t, r)| (t, rpc_fees::btc_per_kvb_to_sat(r)))
            .collect(),
        histogram: Some(
            histogram
                .into_iter()
                .map(|(rate, vsize)| (rpc_fees::sat_vb_to_milli(rate), vsize))
                .collect(),
        ),
    })
}

/// Electrum's `onchain_history(year, show_addresses, show_fiat, from_height, to_height)`.
async fn onchain_history(
    app: &App,
    cache: &Cache,
    params: &Value,
    now: u64,
) -> Result<Value, String> {
    let int = |pos: usize, name: &str| -> Result<Option<i64>, String> {
        match arg(params, pos, name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Some)
                .ok_or_else(|| format!("invalid {name}: {v}")),
        }
    };
    if arg_bool(params, 1, "show_addresses") {
        return Err(
            "show_addresses is not supported by snakkaz-pay's Electrum-compatible endpoint; use gettransaction for a transaction's inputs and outputs".to_owned(),
        );
    }
    // show_fiat: Electrum without an exchange-rate source (its default) ignores it too.
    let mut filter = rpc_history::Filter {
        from_height: int(3, "from_height")?,
        to_height: int(4, "to_height")?,
        ..Default::default()
    };
    if let Some(year) = int(0, "year")?.filter(|&y| y != 0) {
        if filter.from_height.is_some() || filter.to_height.is_some() {
            return Err(
                "timestamp and block height based filtering cannot be used together".to_owned(),
            );
        }
        let (from, to) =
            rpc_history::year_bounds(year).ok_or_else(|| format!("invalid year: {year}"))?;
        filter.from_timestamp = Some(from);
        filter.to_timestamp = Some(to);
    }
    fill_from_server(app, &cache.facts).await;
    let network = app.cfg.network;
    let store = &app.store;
    let label_of = |a: &str| {
        store
            .payment_by_address(a)
            .ok()
            .flatten()
            .and_then(|p| p.description)
    };
    let (rows, tip) = app.with_wallet(|w| {
        (
            rpc_history::rows(w, network, &cache.facts, &label_of),
            crate::wallet::tip_height(w),
        )
    });
    Ok(rpc_history::history(rows, tip, filter, now))
}

/// Asks the server for what only it knows (at most [`rpc_history::MAX_SERVER_LOOKUPS`]
/// of each per call): block positions of confirmed transactions, and fees of someone
/// else's unconfirmed ones (from the paid script's history, as Electrum takes them).
/// Without a server the history still answers, those fields `null` as Electrum shows a
/// transaction it has not verified.
async fn fill_from_server(app: &App, facts: &rpc_history::ServerFacts) {
    type Confirmed = (Txid, bdk_wallet::bitcoin::BlockHash, u32);
    let (confirmed, mempool): (Vec<Confirmed>, Vec<(Txid, ScriptBuf)>) = app.with_wallet(|w| {
        let mut confirmed = Vec::new();
        let mut mempool = Vec::new();
        for t in w.transactions() {
            let txid = t.tx_node.txid;
            match t.chain_position {
                ChainPosition::Confirmed { anchor, .. } => {
                    if facts.position(txid, anchor.block_id.hash).is_none()
                        && confirmed.len() < rpc_history::MAX_SERVER_LOOKUPS
                    {
                        confirmed.push((txid, anchor.block_id.hash, anchor.block_id.height));
                    }
                }
                ChainPosition::Unconfirmed { .. } => {
                    if w.calculate_fee(&t.tx_node.tx).is_err()
                        && facts.fee(txid).is_none()
                        && mempool.len() < rpc_history::MAX_SERVER_LOOKUPS
                        && let Some(o) = t
                            .tx_node
                            .tx
                            .output
                            .iter()
                            .find(|o| w.is_mine(o.script_pubkey.clone()))
                    {
                        mempool.push((txid, o.script_pubkey.clone()));
                    }
                }
            }
        }
        (confirmed, mempool)
    });
    if confirmed.is_empty() && mempool.is_empty() {
        return;
    }
    let cfg = app.cfg.clone();
    let asked: Vec<(Txid, u32)> = confirmed.iter().map(|(t, _, h)| (*t, *h)).collect();
    let answer = tokio::task::spawn_blocking(move || {
        let session = crate::ops::open_lookup(&cfg).map_err(|e| e.to_string())?;
        let positions = session.positions(&asked).map_err(|e| e.to_string())?;
        let mut fees = Vec::new();
        for (txid, script) in &mempool {
            let history = session.history(script).map_err(|e| e.to_string())?;
            if let Some(fee) = history
                .iter()
                .find(|h| h.tx_hash == *txid)
                .and_then(|h| h.fee)
            {
                fees.push((*txid, fee));
            }
        }
        Ok::<_, String>((positions, fees))
    })
    .await;
    match answer {
        Ok(Ok((positions, fees))) => {
            for ((txid, block, height), (h, pos)) in confirmed.into_iter().zip(positions) {
                // A position from another block (a reorg meanwhile) is not this one's.
                if h == height {
                    facts.put_position(txid, block, pos);
                }
            }
            for (txid, fee) in fees {
                facts.put_fee(txid, fee);
            }
        }
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            "onchain_history: the Electrum server did not answer for block positions and mempool fees; answering them as null"
        ),
        Err(e) => tracing::warn!(error = %e, "onchain_history: server look-up task failed"),
    }
}

async fn add_request(app: &App, params: &Value, now: u64) -> Result<Value, String> {
    let amount = arg(params, 0, "amount").ok_or("missing argument: amount")?;
    let amount_sat = parse_btc(amount)?;
    let memo = arg(params, 1, "memo")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Electrum's default is 3600 s; 0 means "never" there, which payments do not have:
    // the configured default expiry applies then.
    let expiration = match arg(params, 2, "expiration") {
        None => Some(3600),
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(0) => None,
            Some(s) => Some(s),
            None => return Err(format!("invalid expiration: {v}")),
        },
    };
    let mut reference = [0u8; 16];
    getrandom::fill(&mut reference).map_err(|e| e.to_string())?;
    let (p, _) = app
        .create_payment(CreatePayment {
            amount_sat,
            reference: format!("electrum-rpc:{}", hex::encode(reference)),
            expires_in_secs: expiration,
            description: (!memo.is_empty()).then_some(memo),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(export(app, &p, now))
}

/// Electrum's `satoshis(amount)`: a BTC amount (string or JSON number) as exact satoshis.
fn parse_btc(v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(format!("invalid amount: {v}")),
    };
    let bad = || format!("invalid amount: {text:?} (a BTC amount with at most 8 decimals)");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 8
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<8}").parse().map_err(|_| bad())?;
    int.checked_mul(100_000_000)
        .and_then(|s| s.checked_add(frac))
        .ok_or_else(bad)
}

fn parse_txid(raw: &str) -> Result<Txid, String> {
    if raw.len() != 64 {
        return Err(format!("'{raw}' is not a txid"));
    }
    Txid::from_str(raw).map_err(|_| format!("'{raw}' is not a txid"))
}

fn parse_address(app: &App, a: &str) -> Option<Address> {
    Address::from_str(a)
        .ok()?
        .require_network(app.cfg.network)
        .ok()
}

fn own_address(app: &App, a: &str) -> Result<Address, String> {
    let address = parse_address(app, a).ok_or_else(|| format!("invalid bitcoin address: {a}"))?;
    if app.with_wallet(|w| w.is_mine(address.script_pubkey())) {
        Ok(address)
    } else {
        // Electrum asks its server for any address; snakkaz-pay knows only its own.
        Err(format!(
            "{a} is not an address of this wallet; snakkaz-pay answers only for its own addresses"
        ))
    }
}

/// `[{"height", "tx_hash"}]` of the wallet's canonical transactions paying or spending `address`.
fn address_history(app: &App, address: &Address) -> Value {
    app.with_wallet(|w| {
        let Some(key) = w.spk_index().index_of_spk(address.script_pubkey()).copied() else {
            return Value::Array(Vec::new());
        };
        let mut txids = std::collections::BTreeSet::new();
        for (_, op) in w.spk_index().inner().outputs_in_range(key..=key) {
            txids.insert(op.txid);
            txids.extend(w.tx_graph().outspends(op).iter().copied());
        }
        let mut rows: Vec<(u32, String)> = txids
            .into_iter()
            .filter_map(|txid| {
                let tx = w.get_tx(txid)?;
                let height = match tx.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => anchor.block_id.height,
                    ChainPosition::Unconfirmed { .. } => 0,
                };
                Some((height, txid.to_string()))
            })
            .collect();
        // Confirmed by height, then the mempool (height 0), as ElectrumX orders them.
        rows.sort_by_key(|(h, t)| (*h == 0, *h, t.clone()));
        Value::Array(
            rows.into_iter()
                .map(|(h, t)| json!({"height": h, "tx_hash": t}))
                .collect(),
        )
    })
}

/// Confirmed and unconfirmed unspent value at `address`.
fn address_balance(app: &App, address: &Address) -> (u64, u64) {
    let spk = address.script_pubkey();
    app.with_wallet(|w| {
        w.list_unspent()
            .filter(|u| u.txout.script_pubkey == spk)
            .fold((0, 0), |(c, u), o| match o.chain_position {
                ChainPosition::Confirmed { .. } => (c + o.txout.value.to_sat(), u),
                ChainPosition::Unconfirmed { .. } => (c, u + o.txout.value.to_sat()),
            })
    })
}

/// Electrum 4.3's `listunspent`: each coin as its `PartialTxInput.to_json()` (a watch-only
/// wallet's coins carry no PSBT data), value as a decimal string.
fn list_unspent(app: &App) -> Value {
    let network = app.cfg.network;
    app.with_wallet(|w| {
        let mut coins: Vec<_> = w.list_unspent().collect();
        coins.sort_by_key(|c| (c.keychain, c.derivation_index, c.outpoint));
        Value::Array(
            coins
                .into_iter()
                .map(|c| {
                    let height = match c.chain_position {
                        ChainPosition::Confirmed { anchor, .. } => anchor.block_id.height,
                        ChainPosition::Unconfirmed { .. } => 0,
                    };
                    let address = Address::from_script(&c.txout.script_pubkey, network)
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    json!({
                        "prevout_hash": c.outpoint.txid.to_string(),
                        "prevout_n": c.outpoint.vout,
                        "coinbase": false,
                        "nsequence": 0xffff_fffe_u32,
                        "height": height,
                        "address": address,
                        "utxo": null,
                        "witness_utxo": null,
                        "sighash": null,
                        "redeem_script": null,
                        "witness_script": null,
                        "part_sigs": {},
                        "bip32_paths": {},
                        "unknown_psbt_fields": {},
                        "value": rpc_shapes::btc_decimal(c.txout.value.to_sat()),
                    })
                })
                .collect(),
        )
    })
}

/// Electrum's request status of a payment.
fn electrum_status(p: &Payment) -> u8 {
    match p.status {
        Status::Pending => status::UNPAID,
        Status::Unconfirmed => status::UNCONFIRMED,
        Status::Confirmed | Status::Completed => status::PAID,
        Status::Expired | Status::Underpaid => status::EXPIRED,
    }
}

/// A payment as Electrum's `export_request`, its depth taken at the wallet's tip.
fn export(app: &App, p: &Payment, now: u64) -> Value {
    let tip = app.with_wallet(|w| crate::wallet::tip_height(w));
    let code = electrum_status(p);
    rpc_shapes::export_request(
        &RequestView {
            request_id: p.id.clone(),
            address: p.address.clone(),
            amount_sat: p.amount_sat,
            message: p.description.clone().unwrap_or_default(),
            timestamp: p.created_at,
            exp: p.expires_at.saturating_sub(p.created_at),
            status: code,
            confirmations: matches!(code, status::PAID | status::UNCONFIRMED)
                .then_some(p.confirmations_at(tip)),
            tx_hashes: p.txids.clone(),
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_amounts_parse_exactly() {
        assert_eq!(parse_btc(&json!("0.00123")), Ok(123_000));
        assert_eq!(parse_btc(&json!(0.001)), Ok(100_000));
        assert_eq!(parse_btc(&json!("1")), Ok(100_000_000));
        assert_eq!(parse_btc(&json!(".5")), Ok(50_000_000));
        assert_eq!(parse_btc(&json!("0.00000001")), Ok(1));
        assert!(parse_btc(&json!("0.000000001")).is_err());
        assert!(parse_btc(&json!("-1")).is_err());
        assert!(parse_btc(&json!("1e-3")).is_err());
        assert!(parse_btc(&json!(".")).is_err());
        assert!(parse_btc(&json!(true)).is_err());
    }

    #[test]
    fn params_by_position_or_name() {
        let p = json!(["a", true]);
        assert_eq!(arg_str(&p, 0, "x"), Ok("a"));
        assert!(arg_bool(&p, 1, "y"));
        let p = json!({"x": "b", "y": false});
        assert_eq!(arg_str(&p, 0, "x"), Ok("b"));
        assert!(!arg_bool(&p, 1, "y"));
        assert!(arg_str(&json!([]), 0, "x").is_err());
    }
}
