//! The Electrum 4.3 daemon methods a payment integration uses, answered from snakkaz-pay's
//! wallet and payments. Requests are payments; addresses are never handed out twice.

use std::str::FromStr;

use bdk_wallet::KeychainKind;
use bdk_wallet::bitcoin::{Address, Txid};
use bdk_wallet::chain::ChainPosition;
use serde_json::{Value, json};

use super::rpc_shapes::{self, RequestView, status};
use super::slip132::AccountKey;
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
/// Methods of the list not implemented (yet): answered with an error naming that.
const NOT_IMPLEMENTED: &[&str] = &["getfeerate", "onchain_history"];

/// Whether `method` gets an answer (others are Electrum's "Invalid Request").
pub fn is_known(method: &str) -> bool {
    METHODS.contains(&method)
        || NEEDS_KEYS.contains(&method)
        || NOT_IMPLEMENTED.contains(&method)
        || method == "getseed"
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

/// Runs `method`; `Err` is the message of Electrum's error envelope.
pub async fn call(app: &App, method: &str, params: &Value) -> Result<Value, String> {
    if NEEDS_KEYS.contains(&method) {
        return Err("This is a watching-only wallet".to_owned());
    }
    if method == "getseed" {
        return Err("This wallet has no seed words".to_owned());
    }
    if NOT_IMPLEMENTED.contains(&method) {
        return Err(format!(
            "{method} is not implemented by snakkaz-pay's Electrum-compatible endpoint"
        ));
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
        _ => Err(format!("attempting to use unregistered method: {method}")),
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
