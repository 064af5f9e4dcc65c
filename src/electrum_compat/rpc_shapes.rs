//! Electrum 4.3's JSON shapes, as pure functions: BTC amounts as its Python code prints
//! them (from integer satoshis, never floats), request status codes and texts, BIP21 URIs.

use serde_json::{Value, json};

/// Satoshis per bitcoin.
const COIN: u64 = 100_000_000;

/// Electrum's request status codes (`invoices.py`).
pub mod status {
    /// Not paid (yet).
    pub const UNPAID: u8 = 0;
    /// Not paid and past its expiry.
    pub const EXPIRED: u8 = 1;
    /// Paid and mined.
    pub const PAID: u8 = 3;
    /// Paid, not mined yet.
    pub const UNCONFIRMED: u8 = 7;
}

/// `str(Decimal(sats) / COIN)` in Python: `getbalance` and `getaddressbalance` amounts
/// ("0.0015", "1", "1E-8", "0").
pub fn btc_decimal(sats: u64) -> String {
    // Python's division keeps the exact quotient with the fewest digits, exponent ≤ 0.
    let (mut n, mut exp) = (sats, -8i32);
    while exp < 0 && n % 10 == 0 {
        n /= 10;
        exp += 1;
    }
    if n == 0 {
        return "0".to_owned();
    }
    let digits = n.to_string();
    let len = digits.len() as i32;
    let adjusted = exp + len - 1;
    if adjusted >= -6 {
        if exp == 0 {
            return digits;
        }
        let point = len + exp;
        if point > 0 {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        } else {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        format!("{mantissa}E{adjusted}")
    }
}

/// Electrum's `format_satoshis(sats)`: request amounts (`amount_BTC`): "0.00123", "1.", "0.".
pub fn format_satoshis(sats: u64) -> String {
    let frac = format!("{:08}", sats % COIN);
    format!("{}.{}", sats / COIN, frac.trim_end_matches('0'))
}

/// Electrum's `format_satoshis_plain(sats)`: URI amounts: "0.00123", "1".
pub fn format_satoshis_plain(sats: u64) -> String {
    format_satoshis(sats).trim_end_matches('.').to_owned()
}

/// Python's `round(a / b)` for non-negative integers: half to even.
fn round_div(a: u64, b: u64) -> u64 {
    let (q, r) = (a / b, a % b);
    match (2 * r).cmp(&b) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q % 2),
    }
}

/// Electrum's `time_difference(…, include_seconds=True)`.
pub fn time_difference(secs: u64) -> String {
    let minutes = round_div(secs, 60);
    match minutes {
        0 => format!("{secs} seconds"),
        1..45 => format!("{minutes} minutes"),
        45..90 => "about 1 hour".to_owned(),
        90..1440 => format!("about {} hours", round_div(minutes, 60)),
        1440..2880 => "1 day".to_owned(),
        2880..43220 => format!("{} days", round_div(minutes, 1440)),
        43220..86400 => "about 1 month".to_owned(),
        86400..525600 => format!("{} months", round_div(minutes, 43200)),
        525600..1051200 => "about 1 year".to_owned(),
        _ => format!("over {} years", round_div(minutes, 525600)),
    }
}

/// Electrum's `status_str` of a request.
pub fn status_str(code: u8, expiration: u64, now: u64) -> String {
    match code {
        status::UNPAID if expiration > 0 => {
            let when = if expiration < now {
                format!("{} ago", time_difference(now - expiration))
            } else {
                format!("in {}", time_difference(expiration - now))
            };
            format!("Expires {when}")
        }
        status::UNPAID => "Unpaid".to_owned(),
        status::EXPIRED => "Expired".to_owned(),
        status::PAID => "Paid".to_owned(),
        status::UNCONFIRMED => "Unconfirmed".to_owned(),
        _ => "Unknown".to_owned(),
    }
}

/// `urllib.parse.quote(s)`: everything but letters, digits, `_.-~` and `/` percent-encoded.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Electrum's BIP21 URI of a request (`get_bip21_URI`, no lightning).
pub fn bip21_uri(address: &str, amount_sat: u64, message: &str, time: u64, exp: u64) -> String {
    let mut query = Vec::new();
    if amount_sat > 0 {
        query.push(format!("amount={}", format_satoshis_plain(amount_sat)));
    }
    if !message.is_empty() {
        query.push(format!("message={}", quote(message)));
    }
    if time > 0 && exp > 0 {
        query.push(format!("time={time}"));
        query.push(format!("exp={exp}"));
    }
    if query.is_empty() {
        format!("bitcoin:{address}")
    } else {
        format!("bitcoin:{address}?{}", query.join("&"))
    }
}

/// A request as Electrum's `export_request` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// The request id (a snakkaz-pay payment id).
    pub request_id: String,
    /// Its address.
    pub address: String,
    /// Amount asked, satoshis.
    pub amount_sat: u64,
    /// Description.
    pub message: String,
    /// Creation, Unix seconds.
    pub timestamp: u64,
    /// Seconds from creation to expiry (0: never).
    pub exp: u64,
    /// Electrum status code.
    pub status: u8,
    /// Depth of the paying transactions, when paid.
    pub confirmations: Option<u32>,
    /// Transactions paying the address.
    pub tx_hashes: Vec<String>,
}

/// Electrum 4.3's `export_request` of an on-chain request (watch-only: no lightning fields).
pub fn export_request(r: &RequestView, now: u64) -> Value {
    let expiration = if r.exp > 0 { r.timestamp + r.exp } else { 0 };
    let mut d = json!({
        "is_lightning": false,
        "amount_BTC": format_satoshis(r.amount_sat),
        "message": r.message,
        "timestamp": r.timestamp,
        "expiration": expiration,
        "status": r.status,
        "status_str": status_str(r.status, expiration, now),
        "request_id": r.request_id,
        "tx_hashes": r.tx_hashes,
        "amount_sat": r.amount_sat,
        "address": r.address,
        "URI": bip21_uri(&r.address, r.amount_sat, &r.message, r.timestamp, r.exp),
    });
    if let Some(c) = r.confirmations {
        d["confirmations"] = c.into();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_as_electrums_python_does() {
        // Pairs printed by Python 3.11 with Electrum 4.3.4's code.
        for (sats, s) in [
            (0, "0"),
            (1, "1E-8"),
            (10, "1E-7"),
            (100, "0.000001"),
            (120, "0.0000012"),
            (150_000, "0.0015"),
            (100_000_000, "1"),
            (200_000_000, "2"),
            (123_456_789, "1.23456789"),
        ] {
            assert_eq!(btc_decimal(sats), s, "{sats}");
        }
        for (sats, s) in [
            (100_000_000, "1."),
            (123_000, "0.00123"),
            (0, "0."),
            (1, "0.00000001"),
            (150_000_000, "1.5"),
        ] {
            assert_eq!(format_satoshis(sats), s, "{sats}");
        }
        assert_eq!(format_satoshis_plain(100_000_000), "1");
        assert_eq!(format_satoshis_plain(123_000), "0.00123");
    }

    #[test]
    fn status_texts_follow_electrums_age() {
        assert_eq!(
            status_str(status::UNPAID, 1_000 + 3_600, 1_000),
            "Expires in about 1 hour"
        );
        assert_eq!(
            status_str(status::UNPAID, 1_000 + 59, 1_000),
            "Expires in 1 minutes"
        );
        assert_eq!(
            status_str(status::UNPAID, 1_000 + 29, 1_000),
            "Expires in 29 seconds"
        );
        assert_eq!(
            status_str(status::UNPAID, 1_000 + 86_400, 1_000),
            "Expires in 1 day"
        );
        assert_eq!(
            status_str(status::UNPAID, 1_000 + 5 * 3_600, 1_000),
            "Expires in about 5 hours"
        );
        assert_eq!(status_str(status::UNPAID, 0, 1_000), "Unpaid");
        assert_eq!(status_str(status::PAID, 5, 1_000), "Paid");
        assert_eq!(status_str(status::UNCONFIRMED, 5, 1_000), "Unconfirmed");
        assert_eq!(status_str(status::EXPIRED, 5, 1_000), "Expired");
        // Python rounds half to even: 90 s is 2 minutes, 150 s is 2 minutes.
        assert_eq!(time_difference(90), "2 minutes");
        assert_eq!(time_difference(150), "2 minutes");
    }

    #[test]
    fn uri_matches_what_electrum_printed() {
        // From `electrum add_request 0.00123 --memo "order 7" --expiration 3600` (4.3.4).
        assert_eq!(
            bip21_uri(
                "bcrt1qu7yl998d4tv6fz7djw0krz4v29sgxkcstpajng",
                123_000,
                "order 7",
                1_795_752_171,
                3_600
            ),
            "bitcoin:bcrt1qu7yl998d4tv6fz7djw0krz4v29sgxkcstpajng?amount=0.00123&message=order%207&time=1795752171&exp=3600"
        );
    }
}
