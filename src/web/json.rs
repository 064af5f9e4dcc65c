//! JSON shapes of the API: payments as the consuming application sees them, and errors.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::payments::{Event, Payment};

/// A payment in API form.
#[derive(Debug, Serialize)]
pub struct PaymentJson<'a> {
    pub id: &'a str,
    pub reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub address: &'a str,
    pub amount_sat: u64,
    pub received_sat: u64,
    pub status: &'static str,
    pub confirmations: u32,
    pub txids: &'a [String],
    pub flags: Vec<&'static str>,
    pub bip21: String,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    pub first_seen_at: Option<String>,
    pub confirmed_at: Option<String>,
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventJson<'a>>>,
    /// Set (RFC 3339) when the payment was moved to the archive (`snakkaz-pay archive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// Fee, fee rate, RBF and unconfirmed parents of its unconfirmed transactions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_facts: Option<Vec<crate::spend::facts::FeeFacts>>,
}

/// An event in API form.
#[derive(Debug, Serialize)]
pub struct EventJson<'a> {
    pub at: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub reason: &'a str,
    pub txids: &'a [String],
}

impl<'a> PaymentJson<'a> {
    pub fn new(p: &'a Payment, events: Option<&'a [Event]>) -> Self {
        PaymentJson {
            id: &p.id,
            reference: &p.reference,
            description: p.description.as_deref(),
            address: &p.address,
            amount_sat: p.amount_sat,
            received_sat: p.received_sat,
            status: p.status.as_str(),
            confirmations: p.confirmations,
            txids: &p.txids,
            flags: p.flags.names(),
            bip21: payment_bip21(p),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            expires_at: rfc3339(p.expires_at),
            first_seen_at: p.first_seen_at.map(rfc3339),
            confirmed_at: p.confirmed_at.map(rfc3339),
            version: p.version,
            events: events.map(|evs| {
                evs.iter()
                    .map(|e| EventJson {
                        at: rfc3339(e.at),
                        from: e.from.map(|s| s.as_str()),
                        to: e.to.as_str(),
                        reason: &e.reason,
                        txids: &e.txids,
                    })
                    .collect()
            }),
            archived_at: None,
            fee_facts: None,
        }
    }

    /// With the fee facts of its unconfirmed transactions (see `spend::facts`).
    pub fn with_fee_facts(mut self, app: &crate::app::App, p: &Payment) -> Self {
        self.fee_facts = crate::spend::facts::of_payment(app, p);
        self
    }
}

/// Satoshis as a BTC decimal string without floating point (`150000` → `0.0015`).
pub fn btc_string(sat: u64) -> String {
    crate::payments::display::btc_decimal(sat)
}

/// The BIP21 URI a payer should use now: after a partial payment it asks only for what
/// is missing, so that a wallet scanning it does not pay the whole amount again.
pub fn payment_bip21(p: &Payment) -> String {
    let remaining = p.remaining_sat();
    let ask = if remaining > 0 {
        remaining
    } else {
        p.amount_sat
    };
    bip21(&p.address, ask, p.description.as_deref())
}

/// A BIP21 URI for paying `amount_sat` to `address`.
pub fn bip21(address: &str, amount_sat: u64, message: Option<&str>) -> String {
    let mut uri = format!("bitcoin:{address}?amount={}", btc_string(amount_sat));
    if let Some(m) = message {
        uri.push_str("&message=");
        uri.push_str(&percent_encode(m));
    }
    uri
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_amounts_are_exact_decimal() {
        assert_eq!(btc_string(1), "0.00000001");
        assert_eq!(btc_string(150_000), "0.0015");
        assert_eq!(btc_string(100_000_000), "1");
        assert_eq!(btc_string(2_100_000_000_000_000), "21000000");
        assert_eq!(btc_string(123_456_789), "1.23456789");
    }

    #[test]
    fn bip21_encodes_the_message() {
        assert_eq!(
            bip21("bcrt1qxyz", 1000, Some("Order #5 & co")),
            "bitcoin:bcrt1qxyz?amount=0.00001&message=Order%20%235%20%26%20co"
        );
    }
}
