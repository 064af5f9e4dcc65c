//! Payments: the data model and the pure lifecycle that moves a payment between statuses.
//!
//! Nothing in here does I/O: the lifecycle is a function of the payment, what the wallet
//! sees paid to its address, the chain tip and the clock.

pub mod display;
pub mod lifecycle;
pub mod receipt;

use serde::{Deserialize, Serialize};

/// Name of the flag set when a confirmed or completed payment's money left the chain.
pub const FLAG_MONEY_LOST: &str = "money_lost";

/// Largest amount a payment may ask for: all bitcoin that will ever exist, in satoshis.
pub const MAX_AMOUNT_SAT: u64 = 2_100_000_000_000_000;

/// Where a payment is in its life. See DESIGN.md "Payment lifecycle".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for money; a partial payment stays here with `received_sat` counting.
    Pending,
    /// The full amount was seen, with fewer than `min_confirmations`.
    Unconfirmed,
    /// The full amount has at least `min_confirmations`.
    Confirmed,
    /// Acknowledged by the consuming application (or auto-completed at depth).
    Completed,
    /// Nothing arrived before `expires_at`.
    Expired,
    /// Less than the amount arrived before `expires_at`.
    Underpaid,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Unconfirmed,
        Status::Confirmed,
        Status::Completed,
        Status::Expired,
        Status::Underpaid,
    ];

    /// The lowercase name used in the API, the store and the sink.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Unconfirmed => "unconfirmed",
            Status::Confirmed => "confirmed",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::Underpaid => "underpaid",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}; expected one of pending, unconfirmed, confirmed, completed, expired, underpaid")
            })
    }
}

/// Conditions worth an operator's attention that do not change the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// More than `amount_sat` arrived.
    #[serde(default)]
    pub overpaid: bool,
    /// Money arrived after `expires_at`.
    #[serde(default)]
    pub late_payment: bool,
    /// A transaction the payment counted was reorganised out or double spent at least once.
    #[serde(default)]
    pub reorged: bool,
    /// Money of a payment already confirmed or completed left the chain: the consuming
    /// application may have delivered for nothing. Stays until the operator acknowledges.
    #[serde(default)]
    pub money_lost: bool,
}

impl Flags {
    /// True when any flag is set.
    pub fn any(&self) -> bool {
        self.overpaid || self.late_payment || self.reorged || self.money_lost
    }

    /// The set flags as names, for the API and the sink.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.overpaid {
            v.push("overpaid");
        }
        if self.late_payment {
            v.push("late_payment");
        }
        if self.reorged {
            v.push("reorged");
        }
        if self.money_lost {
            v.push(FLAG_MONEY_LOST);
        }
        v
    }
}

/// One payment request and what has been seen paid towards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Public identifier (`pay_` + 32 hex digits).
    pub id: String,
    /// Creation order, used as the store key and the list cursor.
    pub seq: u64,
    /// The consuming application's reference; unique, makes creates idempotent.
    pub reference: String,
    /// Free text shown to the payer in the BIP21 URI.
    pub description: Option<String>,
    /// The receive address derived for this payment alone.
    pub address: String,
    /// Derivation index of `address` on the external keychain.
    pub derivation_index: u32,
    /// Amount asked for, in satoshis.
    pub amount_sat: u64,
    /// Sum of all outputs to `address` in transactions the wallet considers current.
    pub received_sat: u64,
    /// Current status.
    pub status: Status,
    /// Depth at which `amount_sat` is covered (0 while in the mempool or pending).
    pub confirmations: u32,
    /// Transactions paying to `address`, in the order first seen.
    pub txids: Vec<String>,
    /// Operator flags.
    pub flags: Flags,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// Unix seconds after which an unpaid payment expires.
    pub expires_at: u64,
    /// Unix seconds when the full amount was first seen.
    pub first_seen_at: Option<u64>,
    /// Unix seconds when the payment first reached `confirmed`.
    pub confirmed_at: Option<u64>,
    /// Height of the block in which the amount became covered; `confirmations` is derived
    /// from it and the tip when read, so a new block does not rewrite every payment.
    #[serde(default)]
    pub covered_height: Option<u32>,
    /// The wallet's tip when the payment was created: money confirmed at or below it was
    /// at the address before the payment existed (an address used beyond the scan's stop
    /// gap) and is never credited to it.
    #[serde(default)]
    pub created_height: Option<u32>,
    /// Incremented on every change; the sink never lets an older version overwrite a newer.
    pub version: u64,
}

impl Payment {
    /// Depth at which the amount is covered, given the current tip (the stored
    /// `confirmations` is the depth when the payment last changed).
    pub fn confirmations_at(&self, tip: u32) -> u32 {
        match self.covered_height {
            Some(h) if tip >= h => tip - h + 1,
            Some(_) => 1,
            None => self.confirmations,
        }
    }
}

/// A recorded change of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds.
    pub at: u64,
    /// Status before (`None` for creation).
    pub from: Option<Status>,
    /// Status after.
    pub to: Status,
    /// Why, in words an operator understands (e.g. "created", "paid", "reorg").
    pub reason: String,
    /// Transactions involved.
    pub txids: Vec<String>,
}

/// A transaction paying to a payment's address, as the wallet currently sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTx {
    /// Transaction id (hex).
    pub txid: String,
    /// Sum of this transaction's outputs to the payment address.
    pub value_sat: u64,
    /// Confirmation height, `None` while in the mempool.
    pub height: Option<u32>,
}

/// Everything the lifecycle needs besides the payment: what was paid, the tip and the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Current (canonical) transactions paying to the address; absent ones were reorged out or replaced.
    pub txs: Vec<SeenTx>,
    /// Height of the best chain tip the wallet knows.
    pub tip_height: u32,
    /// Unix seconds.
    pub now: u64,
}

/// Settings of the lifecycle, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Depth at which a fully paid payment is `confirmed` (at least 1).
    pub min_confirmations: u32,
    /// Depth at which a confirmed payment is completed without acknowledgement; `None` = never.
    pub auto_complete_depth: Option<u32>,
}
