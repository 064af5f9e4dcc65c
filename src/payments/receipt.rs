//! Unattributed receipts: money that reached one of the wallet's addresses and that no
//! open payment counts (an address of a payment closed beyond its late window, an address
//! used before this appliance, a change address paid from outside).

use serde::{Deserialize, Serialize};

/// Why a receipt could not be attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptCause {
    /// Paid to the address of a payment that closed and whose late window ended.
    ClosedPayment,
    /// Paid to a receive address no payment of this appliance owns (used before it, e.g.
    /// by the Electrum wallet it replaced).
    NoPayment,
    /// Paid to a change address by a transaction that spends none of the wallet's coins.
    Change,
}

impl ReceiptCause {
    /// Words for the operator.
    pub fn describe(self) -> &'static str {
        match self {
            ReceiptCause::ClosedPayment => {
                "paid to a closed payment's address after its late window"
            }
            ReceiptCause::NoPayment => {
                "paid to an address no payment of this appliance owns (used before it)"
            }
            ReceiptCause::Change => "paid to a change address from outside the wallet",
        }
    }

    /// The name used in JSON and the sink.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptCause::ClosedPayment => "closed_payment",
            ReceiptCause::NoPayment => "no_payment",
            ReceiptCause::Change => "change",
        }
    }
}

/// One output paid to the wallet that no payment counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// `txid:vout`, the key.
    pub outpoint: String,
    /// The transaction.
    pub txid: String,
    /// The address paid.
    pub address: String,
    /// True for the change keychain.
    pub change: bool,
    /// Derivation index of `address` on its keychain.
    pub derivation_index: u32,
    /// Value of the output.
    pub amount_sat: u64,
    /// Confirmation height, `None` in the mempool.
    pub height: Option<u32>,
    /// Why no payment counts it.
    pub cause: ReceiptCause,
    /// The closed payment whose address was paid, for [`ReceiptCause::ClosedPayment`].
    pub address_payment_id: Option<String>,
    /// Unix seconds when first seen.
    pub first_seen_at: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// The transaction left the chain (reorg, double spend); kept for the record.
    #[serde(default)]
    pub gone: bool,
    /// The payment the operator assigned this money to.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// The operator's note with the assignment.
    #[serde(default)]
    pub note: Option<String>,
}

impl Receipt {
    /// Still needs the operator: on chain and not assigned.
    pub fn open(&self) -> bool {
        !self.gone && self.assigned_to.is_none()
    }

    /// `unassigned`, `assigned` or `gone`.
    pub fn state(&self) -> &'static str {
        if self.gone {
            "gone"
        } else if self.assigned_to.is_some() {
            "assigned"
        } else {
            "unassigned"
        }
    }
}

/// Open receipts: how many and how much.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiptTotals {
    /// Receipts still needing the operator.
    pub unassigned: u64,
    /// Their value.
    pub unassigned_sat: u64,
}

impl ReceiptTotals {
    /// Totals of these receipts.
    pub fn of<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> ReceiptTotals {
        receipts
            .into_iter()
            .filter(|r| r.open())
            .fold(ReceiptTotals::default(), |t, r| ReceiptTotals {
                unassigned: t.unassigned + 1,
                unassigned_sat: t.unassigned_sat.saturating_add(r.amount_sat),
            })
    }
}

/// Where the appliance's watch began (the first scan, or the first start with receipts):
/// what the wallet knew by then is history, not news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Transactions confirmed at or below this height predate the watch.
    pub height: u32,
    /// Unix seconds: transactions first seen before then predate the watch too.
    pub at: u64,
    /// Transactions in the mempool when the watch began (first seen in that second).
    #[serde(default)]
    pub unconfirmed: Vec<String>,
}

impl Floor {
    /// True for a transaction the wallet knew before its watch began. Times are whole
    /// seconds: a transaction first seen in the watch's own second predates it only if
    /// it was among those known then.
    pub fn predates(&self, txid: &str, height: Option<u32>, first_seen: Option<u64>) -> bool {
        height.is_some_and(|h| h <= self.height)
            || first_seen.is_some_and(|t| t < self.at)
            || self.unconfirmed.iter().any(|t| t == txid)
    }
}

/// Whether an output that no open payment counts is a receipt, and why.
///
/// `predates`: the wallet knew the transaction before the appliance's watch began (see
/// [`Floor`]). `owner`: for a receive address with a payment, whether that payment
/// counted this transaction.
pub fn classify(
    change: bool,
    from_outside: bool,
    predates: bool,
    owner: Option<bool>,
) -> Option<ReceiptCause> {
    if predates {
        return None;
    }
    if change {
        return from_outside.then_some(ReceiptCause::Change);
    }
    match owner {
        Some(true) => None,
        Some(false) => Some(ReceiptCause::ClosedPayment),
        None => Some(ReceiptCause::NoPayment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(amount: u64) -> Receipt {
        Receipt {
            outpoint: format!("{}:0", "ab".repeat(32)),
            txid: "ab".repeat(32),
            address: "bcrt1q".into(),
            change: false,
            derivation_index: 3,
            amount_sat: amount,
            height: None,
            cause: ReceiptCause::NoPayment,
            address_payment_id: None,
            first_seen_at: 1,
            updated_at: 1,
            gone: false,
            assigned_to: None,
            note: None,
        }
    }

    #[test]
    fn the_floor_separates_history_from_news() {
        let f = Floor {
            height: 100,
            at: 1_000,
            unconfirmed: vec!["aa".into()],
        };
        assert!(f.predates("x", Some(100), None));
        assert!(!f.predates("x", Some(101), None));
        // In the mempool when the scan ran, confirmed later: still history.
        assert!(f.predates("x", Some(105), Some(999)));
        assert!(f.predates("aa", Some(105), Some(1_000)));
        // Seen in the scan's own second: history only if the scan knew it.
        assert!(f.predates("aa", None, Some(1_000)));
        assert!(!f.predates("bb", None, Some(1_000)));
        assert!(!f.predates("x", None, Some(1_001)));
        assert!(!f.predates("x", None, None));
    }

    #[test]
    fn classification_follows_the_address() {
        assert_eq!(classify(false, true, true, None), None);
        assert_eq!(
            classify(false, true, false, None),
            Some(ReceiptCause::NoPayment)
        );
        // A closed payment's own transactions are counted; others are receipts.
        assert_eq!(classify(false, true, false, Some(true)), None);
        assert_eq!(
            classify(false, true, false, Some(false)),
            Some(ReceiptCause::ClosedPayment)
        );
        // Change from the wallet's own spend is not a receipt; from outside it is.
        assert_eq!(classify(true, false, false, None), None);
        assert_eq!(
            classify(true, true, false, None),
            Some(ReceiptCause::Change)
        );
    }

    #[test]
    fn only_unassigned_receipts_on_chain_count() {
        let a = receipt(1_000);
        let mut gone = receipt(2_000);
        gone.gone = true;
        let mut assigned = receipt(4_000);
        assigned.assigned_to = Some("pay_x".into());
        let t = ReceiptTotals::of([&a, &gone, &assigned]);
        assert_eq!(t.unassigned, 1);
        assert_eq!(t.unassigned_sat, 1_000);
        assert_eq!(a.state(), "unassigned");
        assert_eq!(gone.state(), "gone");
        assert_eq!(assigned.state(), "assigned");
    }
}
