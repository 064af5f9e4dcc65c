//! JSON-RPC methods: the part of bitcoind's API ElectrumX uses, plus `devnet_*`
//! control methods for `scripts/devnet` and the test harness.

use std::sync::Mutex;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, BlockHash, Network, OutPoint, Transaction};
use serde_json::{Value, json};

use crate::error::{RpcError, code};
use crate::node::{Node, parse_txid};
use crate::validation::MIN_RELAY_SAT_PER_VB;

/// The bitcoind version we claim: ElectrumX 2.0 needs at least 31.0.
const VERSION: u64 = 310_000;

/// Answers one JSON-RPC request object (`{"method", "params", "id"}`).
pub fn handle_request(node: &Mutex<Node>, request: &Value) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let result = match request.get("method").and_then(Value::as_str) {
        None => Err(RpcError::new(code::PARSE_ERROR, "request has no method")),
        Some(method) => {
            let params = match request.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(_) => return reply(id, Err(RpcError::params("params must be an array"))),
            };
            let mut node = node.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            call(&mut node, method, &params)
        }
    };
    reply(id, result)
}

fn reply(id: Value, result: Result<Value, RpcError>) -> Value {
    // ElectrumX reads both keys on every reply, so both are always present.
    match result {
        Ok(v) => json!({"result": v, "error": null, "id": id}),
        Err(e) => {
            json!({"result": null, "error": {"code": e.code, "message": e.message}, "id": id})
        }
    }
}

fn btc(amount: Amount) -> Value {
    json!(amount.to_btc())
}

fn sat_per_vb_to_btc_per_kvb(rate: u64) -> Value {
    btc(Amount::from_sat(rate * 1000))
}

fn arg<'a>(params: &'a [Value], n: usize, name: &str) -> Result<&'a Value, RpcError> {
    params
        .get(n)
        .filter(|v| !v.is_null())
        .ok_or_else(|| RpcError::params(format!("missing parameter {n} ({name})")))
}

fn str_arg<'a>(params: &'a [Value], n: usize, name: &str) -> Result<&'a str, RpcError> {
    arg(params, n, name)?
        .as_str()
        .ok_or_else(|| RpcError::params(format!("parameter {n} ({name}) must be a string")))
}

fn u64_arg(params: &[Value], n: usize, name: &str) -> Result<u64, RpcError> {
    arg(params, n, name)?.as_u64().ok_or_else(|| {
        RpcError::params(format!(
            "parameter {n} ({name}) must be a non-negative integer"
        ))
    })
}

/// A verbosity flag given as a bool or a number (bitcoind accepts both).
fn verbosity(params: &[Value], n: usize, default: u64) -> u64 {
    match params.get(n) {
        Some(Value::Bool(b)) => u64::from(*b),
        Some(Value::Number(x)) => x.as_u64().unwrap_or(default),
        _ => default,
    }
}

fn decode_tx(hex: &str) -> Result<Transaction, RpcError> {
    deserialize_hex(hex)
        .map_err(|e| RpcError::new(code::DESERIALIZATION, format!("TX decode failed: {e}")))
}

fn block_hash_arg(params: &[Value], n: usize) -> Result<BlockHash, RpcError> {
    str_arg(params, n, "blockhash")?
        .parse()
        .map_err(|e| RpcError::new(code::INVALID_PARAMETER, format!("blockhash: {e}")))
}

fn call(node: &mut Node, method: &str, p: &[Value]) -> Result<Value, RpcError> {
    match method {
        "getblockcount" => Ok(json!(node.chain.tip_height())),
        "getbestblockhash" => Ok(json!(node.chain.tip_hash().to_string())),
        "getblockhash" => {
            let height = u64_arg(p, 0, "height")?;
            u32::try_from(height)
                .ok()
                .and_then(|h| node.chain.hash_at(h))
                .map(|h| json!(h.to_string()))
                .ok_or_else(|| RpcError::new(code::INVALID_PARAMETER, "Block height out of range"))
        }
        "getblock" => getblock(node, p),
        "getblockheader" => getblockheader(node, p),
        "getblockchaininfo" => Ok(json!({
            "chain": "regtest",
            "blocks": node.chain.tip_height(),
            "headers": node.chain.tip_height(),
            "bestblockhash": node.chain.tip_hash().to_string(),
            "mediantime": node.chain.median_time_past(),
            "initialblockdownload": false,
            "verificationprogress": 1.0,
            "pruned": false,
            "warnings": "",
        })),
        "getnetworkinfo" => Ok(json!({
            "version": VERSION,
            "subversion": "/Satoshi:31.0.0(devnet)/",
            "protocolversion": 70016,
            "localrelay": true,
            "networkactive": true,
            "connections": 0,
            "relayfee": sat_per_vb_to_btc_per_kvb(MIN_RELAY_SAT_PER_VB),
            "incrementalfee": sat_per_vb_to_btc_per_kvb(MIN_RELAY_SAT_PER_VB),
            "warnings": "",
        })),
        "getindexinfo" => {
            let synced = json!({"synced": true, "best_block_height": node.chain.tip_height()});
            Ok(json!({"txindex": synced, "txospenderindex": synced}))
        }
        "getrawmempool" => getrawmempool(node, p),
        "getmempoolinfo" => Ok(json!({
            "loaded": true,
            "size": node.mempool.len(),
            "bytes": node.mempool.vbytes(),
            "usage": node.mempool.vbytes(),
            "total_fee": btc(node.mempool.total_fee()),
            "maxmempool": 300_000_000,
            "mempoolminfee": sat_per_vb_to_btc_per_kvb(MIN_RELAY_SAT_PER_VB),
            "minrelaytxfee": sat_per_vb_to_btc_per_kvb(MIN_RELAY_SAT_PER_VB),
            "incrementalrelayfee": sat_per_vb_to_btc_per_kvb(MIN_RELAY_SAT_PER_VB),
            "unbroadcastcount": 0,
            "fullrbf": true,
        })),
        "getrawtransaction" => getrawtransaction(node, p),
        "sendrawtransaction" => {
            let tx = decode_tx(str_arg(p, 0, "hexstring")?)?;
            Ok(json!(node.submit(tx)?.0.to_string()))
        }
        "testmempoolaccept" => testmempoolaccept(node, p),
        "submitpackage" => submitpackage(node, p),
        "gettxspendingprevout" => gettxspendingprevout(node, p),
        "estimatesmartfee" => {
            // ElectrumX probes with no parameters to learn the method exists: answer
            // like bitcoind does (a usage error, not "method not found").
            let blocks = u64_arg(p, 0, "conf_target")?;
            Ok(
                json!({"feerate": sat_per_vb_to_btc_per_kvb(node.fee_sat_per_vb), "blocks": blocks.max(1)}),
            )
        }
        _ => control(node, method, p),
    }
}

fn control(node: &mut Node, method: &str, p: &[Value]) -> Result<Value, RpcError> {
    match method {
        "devnet_pay" => {
            let txid = node.pay(str_arg(p, 0, "address")?, u64_arg(p, 1, "sats")?)?;
            Ok(json!(txid.to_string()))
        }
        "devnet_pay_many" => {
            let list = p.first().and_then(Value::as_array).ok_or_else(|| {
                RpcError::new(
                    code::INVALID_PARAMETER,
                    "devnet_pay_many takes [[address, sats], ...]",
                )
            })?;
            let to = list
                .iter()
                .map(|e| {
                    let pair = e.as_array().filter(|a| a.len() == 2);
                    match pair.map(|a| (a[0].as_str(), a[1].as_u64())) {
                        Some((Some(a), Some(s))) => Ok((a.to_owned(), s)),
                        _ => Err(RpcError::new(
                            code::INVALID_PARAMETER,
                            format!("{e} is not [address, sats]"),
                        )),
                    }
                })
                .collect::<Result<Vec<_>, RpcError>>()?;
            Ok(json!(node.pay_many(&to)?.to_string()))
        }
        "devnet_mine" => Ok(json!(
            node.mine(u32::try_from(u64_arg(p, 0, "blocks")?).unwrap_or(u32::MAX))
        )),
        "devnet_reorg" => {
            let depth = u32::try_from(u64_arg(p, 0, "depth")?).unwrap_or(u32::MAX);
            let drop = match p.get(1) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(ids)) => ids
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| RpcError::params("drop must list txids"))
                            .and_then(parse_txid)
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(RpcError::params("drop must be an array of txids")),
            };
            Ok(json!(node.reorg(depth, &drop)?))
        }
        "devnet_replace" => {
            let txid = parse_txid(str_arg(p, 0, "txid")?)?;
            let address = p.get(1).and_then(Value::as_str);
            Ok(json!(node.replace(txid, address)?.to_string()))
        }
        "devnet_fee" => {
            node.fee_sat_per_vb = u64_arg(p, 0, "sat_per_vb")?;
            Ok(Value::Null)
        }
        "devnet_status" => Ok(json!({
            "height": node.chain.tip_height(),
            "tip": node.chain.tip_hash().to_string(),
            "mempool": node.mempool.len(),
            "fee_sat_per_vb": node.fee_sat_per_vb,
            "faucet_address": node.faucet.address().to_string(),
            "faucet_sats": node.faucet.balance(&node.chain, &node.mempool).to_sat(),
        })),
        _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
    }
}

fn getblock(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let hash = block_hash_arg(p, 0)?;
    let (block, height) = node
        .chain
        .block(&hash)
        .ok_or_else(|| RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    if verbosity(p, 1, 1) == 0 {
        return Ok(json!(serialize_hex(block)));
    }
    let confirmations = if node.chain.is_active(&hash) {
        i64::from(node.chain.tip_height() - height) + 1
    } else {
        -1
    };
    let txids: Vec<String> = block
        .txdata
        .iter()
        .map(|t| t.compute_txid().to_string())
        .collect();
    let mut v = header_json(&block.header, height, confirmations);
    v["tx"] = json!(txids);
    v["nTx"] = json!(block.txdata.len());
    v["size"] = json!(block.total_size());
    v["weight"] = json!(block.weight().to_wu());
    Ok(v)
}

fn header_json(header: &bitcoin::block::Header, height: u32, confirmations: i64) -> Value {
    let mut v = json!({
        "hash": header.block_hash().to_string(),
        "confirmations": confirmations,
        "height": height,
        "version": header.version.to_consensus(),
        "merkleroot": header.merkle_root.to_string(),
        "time": header.time,
        "nonce": header.nonce,
        "bits": format!("{:08x}", header.bits.to_consensus()),
    });
    if header.prev_blockhash != BlockHash::all_zeros() {
        v["previousblockhash"] = json!(header.prev_blockhash.to_string());
    }
    v
}

fn getblockheader(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let hash = block_hash_arg(p, 0)?;
    let (block, height) = node
        .chain
        .block(&hash)
        .ok_or_else(|| RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
    if verbosity(p, 1, 1) == 0 {
        return Ok(json!(serialize_hex(&block.header)));
    }
    let confirmations = if node.chain.is_active(&hash) {
        i64::from(node.chain.tip_height() - height) + 1
    } else {
        -1
    };
    Ok(header_json(&block.header, height, confirmations))
}

fn getrawmempool(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let entries = node.mempool.ordered();
    if verbosity(p, 0, 0) == 0 {
        return Ok(json!(
            entries
                .iter()
                .map(|e| e.tx.compute_txid().to_string())
                .collect::<Vec<_>>()
        ));
    }
    let map: serde_json::Map<String, Value> = entries
        .iter()
        .map(|e| {
            let v = json!({"vsize": e.vsize, "time": e.time, "fees": {"base": btc(e.fee)}, "bip125-replaceable": true});
            (e.tx.compute_txid().to_string(), v)
        })
        .collect();
    Ok(Value::Object(map))
}

fn getrawtransaction(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let txid = parse_txid(str_arg(p, 0, "txid")?)?;
    let verbose = verbosity(p, 1, 0) > 0;
    let not_found = || {
        RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
        )
    };
    if let Some(entry) = node.mempool.get(&txid) {
        return Ok(if verbose {
            tx_json(&entry.tx, None)
        } else {
            json!(serialize_hex(&entry.tx))
        });
    }
    let found = node.chain.tx(&txid).ok_or_else(not_found)?;
    if !verbose {
        return Ok(json!(serialize_hex(found.tx)));
    }
    let confirmations = node.chain.tip_height() - found.height + 1;
    Ok(tx_json(
        found.tx,
        Some((found.block_hash, confirmations, found.block_time)),
    ))
}

/// bitcoind's verbose transaction object.
fn tx_json(tx: &Transaction, block: Option<(BlockHash, u32, u32)>) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let witness: Vec<String> = i.witness.iter().map(hex_of).collect();
            if tx.is_coinbase() {
                json!({"coinbase": hex_of(i.script_sig.as_bytes()), "txinwitness": witness, "sequence": i.sequence.0})
            } else {
                json!({
                    "txid": i.previous_output.txid.to_string(),
                    "vout": i.previous_output.vout,
                    "scriptSig": {"hex": hex_of(i.script_sig.as_bytes())},
                    "txinwitness": witness,
                    "sequence": i.sequence.0,
                })
            }
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| {
            let mut spk = json!({"hex": hex_of(o.script_pubkey.as_bytes())});
            if let Ok(addr) = Address::from_script(&o.script_pubkey, Network::Regtest) {
                spk["address"] = json!(addr.to_string());
            }
            json!({"value": btc(o.value), "n": n, "scriptPubKey": spk})
        })
        .collect();
    let mut v = json!({
        "txid": tx.compute_txid().to_string(),
        "hash": tx.compute_wtxid().to_string(),
        "version": tx.version.0,
        "size": tx.total_size(),
        "vsize": tx.vsize(),
        "weight": tx.weight().to_wu(),
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": vout,
        "hex": serialize_hex(tx),
    });
    if let Some((hash, confirmations, time)) = block {
        v["blockhash"] = json!(hash.to_string());
        v["confirmations"] = json!(confirmations);
        v["time"] = json!(time);
        v["blocktime"] = json!(time);
    }
    v
}

fn hex_of(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_list(p: &[Value]) -> Result<Vec<Transaction>, RpcError> {
    arg(p, 0, "rawtxs")?
        .as_array()
        .ok_or_else(|| RpcError::params("rawtxs must be an array of hex strings"))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| RpcError::params("rawtxs must hold hex strings"))
                .and_then(decode_tx)
        })
        .collect()
}

fn testmempoolaccept(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let results: Vec<Value> = hex_list(p)?
        .iter()
        .map(|tx| {
            let mut v = json!({"txid": tx.compute_txid().to_string(), "wtxid": tx.compute_wtxid().to_string()});
            match node.test_accept(tx) {
                Ok(a) => {
                    v["allowed"] = json!(true);
                    v["vsize"] = json!(tx.vsize());
                    v["fees"] = json!({"base": btc(a.fee)});
                }
                Err(e) => {
                    v["allowed"] = json!(false);
                    v["reject-reason"] = json!(e.message);
                }
            }
            v
        })
        .collect();
    Ok(json!(results))
}

fn submitpackage(node: &mut Node, p: &[Value]) -> Result<Value, RpcError> {
    let mut results = serde_json::Map::new();
    let mut replaced = Vec::new();
    let mut msg = "success".to_string();
    for tx in hex_list(p)? {
        let wtxid = tx.compute_wtxid().to_string();
        let vsize = tx.vsize();
        let txid = tx.compute_txid();
        let v = match node.submit(tx) {
            Ok((_, a)) => {
                replaced.extend(a.replaces.iter().map(|t| t.to_string()));
                json!({"txid": txid.to_string(), "vsize": vsize, "fees": {"base": btc(a.fee)}})
            }
            Err(e) => {
                msg = "transaction failed".to_string();
                json!({"txid": txid.to_string(), "error": e.message})
            }
        };
        results.insert(wtxid, v);
    }
    Ok(json!({"package_msg": msg, "tx-results": results, "replaced-transactions": replaced}))
}

fn gettxspendingprevout(node: &Node, p: &[Value]) -> Result<Value, RpcError> {
    let outpoints = arg(p, 0, "outputs")?
        .as_array()
        .ok_or_else(|| RpcError::params("outputs must be an array"))?;
    let mempool_only = p
        .get(1)
        .and_then(|o| o.get("mempool_only"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    outpoints
        .iter()
        .map(|o| {
            let txid = parse_txid(o.get("txid").and_then(Value::as_str).unwrap_or_default())?;
            let vout = o
                .get("vout")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| RpcError::params("vout must be a non-negative integer"))?;
            let op = OutPoint::new(txid, vout);
            let mut v = json!({"txid": txid.to_string(), "vout": vout});
            if let Some(spender) = node.mempool.spender(&op) {
                v["spendingtxid"] = json!(spender.to_string());
            } else if let Some((spender, block)) = node.chain.spender(&op).filter(|_| !mempool_only)
            {
                v["spendingtxid"] = json!(spender.to_string());
                v["blockhash"] = json!(block.to_string());
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::from)
}
