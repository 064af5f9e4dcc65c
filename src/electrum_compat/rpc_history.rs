//! Electrum 4.3's `onchain_history`: the wallet's transactions oldest first with their
//! effect on the balance, and the summary Electrum adds (balances at both ends, flow).
//! The shapes are pure functions of [`Row`]s so they are tested without a wallet.

use std::collections::HashMap;
use std::sync::Mutex;

use bdk_wallet::Wallet;
use bdk_wallet::bitcoin::{Address, BlockHash, Network, Txid};
use bdk_wallet::chain::ChainPosition;
use serde_json::{Value, json};

/// Most block positions (or mempool fees) asked of the Electrum server in one call; the
/// rest answer `null` (Electrum's value for a transaction it has not verified yet) until a
/// later call.
pub const MAX_SERVER_LOOKUPS: usize = 200;
/// Electrum's monotonic timestamp of an unconfirmed transaction.
const UNCONFIRMED_TIMESTAMP: u64 = 999_999_999_999;

/// One wallet transaction as `onchain_history` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Transaction id.
    pub txid: Txid,
    /// Block height; 0 in the mempool, -1 in the mempool with an unconfirmed parent.
    pub height: i64,
    /// Block hash when confirmed.
    pub block: Option<BlockHash>,
    /// Block time when confirmed.
    pub timestamp: Option<u64>,
    /// Position in its block, when known.
    pub txpos: Option<u32>,
    /// Received minus sent by the wallet, satoshis.
    pub delta: i64,
    /// Fee as Electrum reports it (see [`rows`]).
    pub fee: Option<u64>,
    /// Electrum's default label: the requests' messages of the paid addresses.
    pub label: String,
}

/// Filters of the call (Electrum's `year`, `from_height`, `to_height`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// From this timestamp (inclusive).
    pub from_timestamp: Option<u64>,
    /// Before this timestamp.
    pub to_timestamp: Option<u64>,
    /// From this height (confirmed only; the mempool always passes).
    pub from_height: Option<i64>,
    /// Below this height (confirmed only; the mempool never passes).
    pub to_height: Option<i64>,
}

/// What only the Electrum server knows and never changes for a given block: positions of
/// confirmed transactions, kept per (txid, block) so a reorg never reuses a stale one, and
/// the fee of someone else's unconfirmed transaction (its inputs are not the wallet's).
#[derive(Debug, Default)]
pub struct ServerFacts {
    positions: Mutex<HashMap<(Txid, BlockHash), u32>>,
    fees: Mutex<HashMap<Txid, u64>>,
}

impl ServerFacts {
    /// Known position of `txid` in `block`.
    pub fn position(&self, txid: Txid, block: BlockHash) -> Option<u32> {
        lock(&self.positions).get(&(txid, block)).copied()
    }

    /// Remembers a position.
    pub fn put_position(&self, txid: Txid, block: BlockHash, pos: u32) {
        lock(&self.positions).insert((txid, block), pos);
    }

    /// The server's fee of a transaction.
    pub fn fee(&self, txid: Txid) -> Option<u64> {
        lock(&self.fees).get(&txid).copied()
    }

    /// Remembers a fee the server reported.
    pub fn put_fee(&self, txid: Txid, fee: u64) {
        lock(&self.fees).insert(txid, fee);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wallet's canonical transactions as rows. Fees follow Electrum's rule: computed when
/// every input is the wallet's; for someone else's transaction only while it is
/// unconfirmed (Electrum then trusts the server's figure, which is the same number), and
/// `None` once confirmed. `label_of` gives a payment's description by address.
pub fn rows(
    w: &Wallet,
    network: Network,
    facts: &ServerFacts,
    label_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<Row> {
    let mut out = Vec::new();
    for t in w.transactions() {
        let tx = &t.tx_node.tx;
        let (sent, received) = w.sent_and_received(tx);
        let delta = received.to_sat() as i64 - sent.to_sat() as i64;
        let all_inputs_ours = !tx.input.is_empty()
            && tx
                .input
                .iter()
                .all(|i| w.spk_index().txout(i.previous_output).is_some());
        let any_input_ours = tx
            .input
            .iter()
            .any(|i| w.spk_index().txout(i.previous_output).is_some());
        let (height, block, timestamp) = match t.chain_position {
            ChainPosition::Confirmed { anchor, .. } => (
                i64::from(anchor.block_id.height),
                Some(anchor.block_id.hash),
                Some(anchor.confirmation_time),
            ),
            ChainPosition::Unconfirmed { .. } => {
                // -1 as ElectrumX says when a parent it knows of is itself unconfirmed.
                let parent_unconfirmed = tx.input.iter().any(|i| {
                    w.get_tx(i.previous_output.txid)
                        .is_some_and(|p| !p.chain_position.is_confirmed())
                });
                (if parent_unconfirmed { -1 } else { 0 }, None, None)
            }
        };
        let txid = t.tx_node.txid;
        let fee = if all_inputs_ours {
            w.calculate_fee(tx).ok().map(|a| a.to_sat())
        } else if block.is_none() {
            w.calculate_fee(tx)
                .ok()
                .map(|a| a.to_sat())
                .or_else(|| facts.fee(txid))
        } else {
            None
        };
        let label = if any_input_ours {
            // Electrum labels outgoing transactions with its invoices' messages; a
            // watch-only appliance pays no invoices.
            String::new()
        } else {
            let mut labels = Vec::new();
            for o in &tx.output {
                if !w.is_mine(o.script_pubkey.clone()) {
                    continue;
                }
                if let Ok(a) = Address::from_script(&o.script_pubkey, network)
                    && let Some(l) = label_of(&a.to_string()).filter(|l| !l.is_empty())
                    && !labels.contains(&l)
                {
                    labels.push(l);
                }
            }
            labels.join(", ")
        };
        out.push(Row {
            txid,
            height,
            block,
            timestamp,
            txpos: block.and_then(|b| facts.position(txid, b)),
            delta,
            fee,
            label,
        });
    }
    out
}

/// Electrum's `get_txpos` order: confirmed by (height, position), then the mempool, the
/// ones with unconfirmed parents last; ties by txid.
fn sort_key(r: &Row) -> (i64, i64, Txid) {
    if r.height > 0 {
        (r.height, r.txpos.map_or(-1, i64::from), r.txid)
    } else {
        (1_000_000_000 - r.height, -1, r.txid)
    }
}

/// The whole `onchain_history` answer for `rows` at wallet tip `tip`.
pub fn history(mut rows: Vec<Row>, tip: u32, filter: Filter, now: u64) -> Value {
    rows.sort_by_key(sort_key);
    let mut balance = 0i64;
    let mut monotonic = 0u64;
    let mut out = Vec::new();
    let (mut income, mut expenditures) = (0i64, 0i64);
    let mut first: Option<(i64, i64, i64, Option<u64>)> = None;
    let mut last: Option<(i64, i64, Option<u64>)> = None;
    for r in rows {
        balance += r.delta;
        monotonic = monotonic.max(r.timestamp.unwrap_or(UNCONFIRMED_TIMESTAMP));
        let ts = r.timestamp.unwrap_or(now);
        if filter.from_timestamp.is_some_and(|f| ts < f)
            || filter.to_timestamp.is_some_and(|t| ts >= t)
            || filter
                .from_height
                .is_some_and(|f| f > r.height && r.height > 0)
            || filter
                .to_height
                .is_some_and(|t| r.height >= t || r.height <= 0)
        {
            continue;
        }
        if r.delta < 0 {
            expenditures -= r.delta;
        } else {
            income += r.delta;
        }
        let confirmations = if r.height > 0 {
            i64::from(tip) - r.height + 1
        } else {
            0
        };
        first.get_or_insert((r.height, balance, r.delta, r.timestamp));
        last = Some((r.height, balance, r.timestamp));
        out.push(json!({
            "txid": r.txid.to_string(),
            "fee_sat": r.fee,
            "height": r.height,
            "confirmations": confirmations.max(0),
            "timestamp": r.timestamp,
            "monotonic_timestamp": monotonic,
            "incoming": r.delta > 0,
            "bc_value": satoshis(r.delta),
            "bc_balance": satoshis(balance),
            "date": r.timestamp.map(minutes),
            "label": r.label,
            "txpos_in_block": r.txpos,
            "fee": r.fee.map(|f| satoshis(f as i64)),
        }));
    }
    let summary = match (first, last) {
        (Some((h0, b0, v0, t0)), Some((h1, b1, t1))) => {
            let heights = filter.from_height.is_some() || filter.to_height.is_some();
            let (start_height, end_height) = if heights {
                (filter.from_height, filter.to_height)
            } else {
                (Some(h0 - 1), Some(h1))
            };
            let (start_ts, end_ts) = match (filter.from_timestamp, filter.to_timestamp) {
                (Some(f), Some(t)) => (Some(f), Some(t)),
                _ => (t0, t1),
            };
            let point = |ts: Option<u64>, height: Option<i64>, bal: i64| {
                json!({
                    "date": ts.map(minutes),
                    "block_height": height,
                    "BTC_balance": satoshis(bal),
                })
            };
            json!({
                "begin": point(start_ts, start_height, b0 - v0),
                "end": point(end_ts, end_height, b1),
                "flow": {
                    "BTC_incoming": satoshis(income),
                    "BTC_outgoing": satoshis(expenditures),
                },
            })
        }
        _ => json!({}),
    };
    json!({"transactions": out, "summary": summary})
}

/// Electrum's `str(Satoshis(v))`: BTC with up to 8 decimals, trailing zeros dropped, the
/// point always kept (`"0."`, `"-0.001"`, `"21000000."`).
pub fn satoshis(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let frac = format!("{:08}", a % 100_000_000);
    format!("{sign}{}.{}", a / 100_000_000, frac.trim_end_matches('0'))
}

/// Electrum's JSON form of a date: `isoformat(' ')[:-3]`, to the minute. Electrum uses its
/// process's time zone; snakkaz-pay uses UTC (the appliance's zone).
pub fn minutes(ts: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    // "2026-11-27T10:05:07Z" -> "2026-11-27 10:05"
    s.get(..16).unwrap_or(&s).replacen('T', " ", 1)
}

/// Electrum's year filter: [1 January, next 1 January) of `year` (UTC here).
pub fn year_bounds(year: i64) -> Option<(u64, u64)> {
    let start = days_from_civil(year)?;
    let end = days_from_civil(year + 1)?;
    Some((start * 86_400, end * 86_400))
}

/// Days from 1970-01-01 to 1 January of `year` (proleptic Gregorian), for years 1970..=9999.
fn days_from_civil(year: i64) -> Option<u64> {
    if !(1970..=10_000).contains(&year) {
        return None;
    }
    let leaps = |y: i64| y / 4 - y / 100 + y / 400;
    let y = year - 1;
    Some((365 * (year - 1970) + leaps(y) - leaps(1969)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn txid(n: u8) -> Txid {
        Txid::from_str(&format!("{n:02x}").repeat(32)).unwrap()
    }

    fn row(n: u8, height: i64, txpos: Option<u32>, delta: i64, ts: Option<u64>) -> Row {
        Row {
            txid: txid(n),
            height,
            block: None,
            timestamp: ts,
            txpos,
            delta,
            fee: None,
            label: String::new(),
        }
    }

    #[test]
    fn satoshis_print_as_electrum_does() {
        // Values printed by Electrum 4.3.4's str(Satoshis(v)).
        assert_eq!(satoshis(0), "0.");
        assert_eq!(satoshis(1), "0.00000001");
        assert_eq!(satoshis(-100_000), "-0.001");
        assert_eq!(satoshis(123_456_789), "1.23456789");
        assert_eq!(satoshis(2_100_000_000_000_000), "21000000.");
    }

    #[test]
    fn dates_to_the_minute_and_year_bounds() {
        assert_eq!(minutes(0), "1970-01-01 00:00");
        // Python: datetime.fromtimestamp(1795000000).isoformat(" ")[:-3] with TZ=UTC.
        assert_eq!(minutes(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(year_bounds(1970), Some((0, 31_536_000)));
        // 2024 is a leap year: 366 days.
        let (a, b) = year_bounds(2024).unwrap();
        assert_eq!((a, b - a), (1_704_067_200, 366 * 86_400));
        assert_eq!(year_bounds(1969), None);
    }

    #[test]
    fn history_orders_by_block_position_then_mempool_and_sums_balances() {
        let rows = vec![
            row(4, 0, None, 5_000, None),
            row(3, 102, Some(2), -20_000, Some(300)),
            row(2, 102, Some(1), 100_000, Some(300)),
            row(1, 101, Some(1), 50_000, Some(200)),
            row(5, -1, None, 1_000, None),
        ];
        let h = history(rows, 103, Filter::default(), 1_000);
        let t = h["transactions"].as_array().unwrap();
        let ids: Vec<_> = t.iter().map(|x| x["txid"].clone()).collect();
        assert_eq!(
            ids,
            [1, 2, 3, 4, 5].map(|n| json!(txid(n).to_string())).to_vec()
        );
        let balances: Vec<_> = t.iter().map(|x| x["bc_balance"].clone()).collect();
        assert_eq!(
            balances,
            vec![
                json!("0.0005"),
                json!("0.0015"),
                json!("0.0013"),
                json!("0.00135"),
                json!("0.00136")
            ]
        );
        assert_eq!(t[0]["confirmations"], 3);
        assert_eq!(t[3]["confirmations"], 0);
        assert_eq!(t[3]["monotonic_timestamp"], UNCONFIRMED_TIMESTAMP);
        assert_eq!(t[2]["incoming"], false);
        assert_eq!(h["summary"]["begin"]["block_height"], 100);
        assert_eq!(h["summary"]["begin"]["BTC_balance"], "0.");
        assert_eq!(h["summary"]["end"]["block_height"], -1);
        assert_eq!(h["summary"]["end"]["date"], Value::Null);
        assert_eq!(h["summary"]["flow"]["BTC_incoming"], "0.00156");
        assert_eq!(h["summary"]["flow"]["BTC_outgoing"], "0.0002");
    }

    #[test]
    fn height_filters_keep_the_running_balance_of_the_whole_history() {
        let rows = vec![
            row(1, 101, Some(1), 50_000, Some(200)),
            row(2, 102, Some(1), 100_000, Some(300)),
            row(3, 0, None, 7, None),
        ];
        let f = Filter {
            from_height: Some(102),
            to_height: Some(200),
            ..Filter::default()
        };
        let h = history(rows, 103, f, 1_000);
        let t = h["transactions"].as_array().unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["bc_balance"], "0.0015");
        assert_eq!(h["summary"]["begin"]["BTC_balance"], "0.0005");
        assert_eq!(h["summary"]["begin"]["block_height"], 102);
        assert_eq!(h["summary"]["end"]["block_height"], 200);
        let empty = history(Vec::new(), 1, Filter::default(), 0);
        assert_eq!(empty, json!({"transactions": [], "summary": {}}));
    }
}
