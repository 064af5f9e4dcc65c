//! Electrum script statuses: the hash a server sends on subscribe and in notifications,
//! recomputed from a `get_history` answer for the safety-net check.

use bdk_electrum::electrum_client::GetHistoryRes;
use bdk_wallet::bitcoin::hashes::{Hash, sha256};

/// A script's Electrum status as lowercase hex; `None` for a script without history.
pub type Status = Option<String>;

/// The status of a history, as the Electrum protocol defines it: SHA-256 of the
/// concatenated `txid:height:` of each entry in the server's order (confirmed by height,
/// then the mempool with height 0 or -1).
pub fn of_history(history: &[GetHistoryRes]) -> Status {
    if history.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(history.len() * 72);
    for h in history {
        text.push_str(&format!("{}:{}:", h.tx_hash, h.height));
    }
    Some(hex::encode(
        sha256::Hash::hash(text.as_bytes()).to_byte_array(),
    ))
}

/// The hex form of a status as electrum-client returns it.
pub fn hex(status: Option<bdk_electrum::electrum_client::ScriptStatus>) -> Status {
    status.map(|s| hex::encode(*s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn entry(txid: &str, height: i32) -> GetHistoryRes {
        serde_json::from_value(serde_json::json!({"tx_hash": txid, "height": height}))
            .expect("history entry")
    }

    #[test]
    fn empty_history_has_no_status() {
        assert_eq!(of_history(&[]), None);
    }

    #[test]
    fn status_is_the_sha256_of_txid_height_pairs_in_order() {
        let a = "a0c81a1f1b6ba3f1d4bde6ba2a4acfcf3caf5e16b8c18fb4e4a0a64e8b5e5d01";
        let b = "b0c81a1f1b6ba3f1d4bde6ba2a4acfcf3caf5e16b8c18fb4e4a0a64e8b5e5d02";
        let got = of_history(&[entry(a, 101), entry(b, 0)]).unwrap();
        // Same as Python: hashlib.sha256(f"{a}:101:{b}:0:".encode()).hexdigest()
        let want = sha256::Hash::hash(format!("{a}:101:{b}:0:").as_bytes());
        assert_eq!(got, hex::encode(want.to_byte_array()));
        // Order matters: the server's order is part of the status.
        assert_ne!(of_history(&[entry(b, 0), entry(a, 101)]), Some(got));
        assert!(bdk_wallet::bitcoin::Txid::from_str(a).is_ok());
    }
}
