//! The pure mapping from a payment in the store to its `electrum_payments` row.

use serde::Serialize;

use crate::payments::Payment;

/// A value did not fit its Postgres column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payment {id}: {field} = {value} does not fit its Postgres column")]
pub struct RowError {
    /// Payment id.
    pub id: String,
    /// Column.
    pub field: &'static str,
    /// Offending value.
    pub value: u64,
}

/// One `electrum_payments` row; times are Unix seconds, converted by the upsert's SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRow {
    /// Public id.
    pub id: String,
    /// Application reference.
    pub reference: String,
    /// Free text.
    pub description: Option<String>,
    /// Receive address.
    pub bitcoin_address: String,
    /// Asked amount in satoshis.
    pub amount_sat: i64,
    /// Received satoshis.
    pub received_sat: i64,
    /// Status name.
    pub status: &'static str,
    /// Depth.
    pub confirmations: i32,
    /// Paying transactions.
    pub txids: Vec<String>,
    /// Flag names.
    pub flags: Vec<&'static str>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub first_seen_at: Option<i64>,
    /// Unix seconds.
    pub confirmed_at: Option<i64>,
    /// Payment version; the upsert keeps the higher one.
    pub version: i64,
}

impl PaymentRow {
    /// The row for the payment's current state.
    pub fn from_payment(p: &Payment) -> Result<PaymentRow, RowError> {
        let big = |field: &'static str, value: u64| {
            i64::try_from(value).map_err(|_| RowError {
                id: p.id.clone(),
                field,
                value,
            })
        };
        Ok(PaymentRow {
            id: p.id.clone(),
            reference: p.reference.clone(),
            description: p.description.clone(),
            bitcoin_address: p.address.clone(),
            amount_sat: big("amount_sat", p.amount_sat)?,
            received_sat: big("received_sat", p.received_sat)?,
            status: p.status.as_str(),
            confirmations: i32::try_from(p.confirmations).map_err(|_| RowError {
                id: p.id.clone(),
                field: "confirmations",
                value: u64::from(p.confirmations),
            })?,
            txids: p.txids.clone(),
            flags: p.flags.names(),
            created_at: big("created_at", p.created_at)?,
            updated_at: big("updated_at", p.updated_at)?,
            expires_at: big("expires_at", p.expires_at)?,
            first_seen_at: p
                .first_seen_at
                .map(|t| big("first_seen_at", t))
                .transpose()?,
            confirmed_at: p.confirmed_at.map(|t| big("confirmed_at", t)).transpose()?,
            version: big("version", p.version)?,
        })
    }
}

/// Upserts a JSON array of `PaymentRow`s in one statement (one round trip per batch);
/// a row replaces the stored one only when its version is higher.
pub const UPSERT_SQL: &str = "\
INSERT INTO electrum_payments AS p (id, reference, description, bitcoin_address, amount_sat,
    received_sat, status, confirmations, txids, flags, created_at, updated_at, expires_at,
    first_seen_at, confirmed_at, version, synced_at)
SELECT r.id, r.reference, r.description, r.bitcoin_address, r.amount_sat, r.received_sat,
    r.status, r.confirmations, r.txids, r.flags, to_timestamp(r.created_at),
    to_timestamp(r.updated_at), to_timestamp(r.expires_at), to_timestamp(r.first_seen_at),
    to_timestamp(r.confirmed_at), r.version, now()
FROM jsonb_to_recordset($1::text::jsonb) AS r(id text, reference text, description text,
    bitcoin_address text, amount_sat bigint, received_sat bigint, status text,
    confirmations integer, txids text[], flags text[], created_at bigint, updated_at bigint,
    expires_at bigint, first_seen_at bigint, confirmed_at bigint, version bigint)
ON CONFLICT (id) DO UPDATE SET
    reference = EXCLUDED.reference, description = EXCLUDED.description,
    bitcoin_address = EXCLUDED.bitcoin_address, amount_sat = EXCLUDED.amount_sat,
    received_sat = EXCLUDED.received_sat, status = EXCLUDED.status,
    confirmations = EXCLUDED.confirmations, txids = EXCLUDED.txids, flags = EXCLUDED.flags,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    expires_at = EXCLUDED.expires_at, first_seen_at = EXCLUDED.first_seen_at,
    confirmed_at = EXCLUDED.confirmed_at, version = EXCLUDED.version, synced_at = now()
WHERE p.version < EXCLUDED.version";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::{Flags, Status};

    fn payment() -> Payment {
        Payment {
            id: "pay_0123".into(),
            seq: 7,
            reference: "order-7".into(),
            description: Some("Chat credits".into()),
            address: "bcrt1qexample".into(),
            derivation_index: 6,
            amount_sat: 2_100_000_000_000_000,
            received_sat: 40_000,
            status: Status::Unconfirmed,
            confirmations: 1,
            txids: vec!["aa".into(), "bb".into()],
            flags: Flags {
                overpaid: true,
                late_payment: false,
                reorged: true,
                money_lost: false,
            },
            created_at: 1_700_000_000,
            updated_at: 1_700_000_100,
            expires_at: 1_700_003_600,
            first_seen_at: Some(1_700_000_050),
            confirmed_at: None,
            covered_height: None,
            created_height: None,
            version: 4,
        }
    }

    #[test]
    fn every_field_maps_to_its_column() {
        let r = PaymentRow::from_payment(&payment()).unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({
                "id": "pay_0123", "reference": "order-7", "description": "Chat credits",
                "bitcoin_address": "bcrt1qexample", "amount_sat": 2_100_000_000_000_000_i64,
                "received_sat": 40_000, "status": "unconfirmed", "confirmations": 1,
                "txids": ["aa", "bb"], "flags": ["overpaid", "reorged"],
                "created_at": 1_700_000_000, "updated_at": 1_700_000_100,
                "expires_at": 1_700_003_600, "first_seen_at": 1_700_000_050,
                "confirmed_at": null, "version": 4
            })
        );
    }

    #[test]
    fn values_beyond_bigint_are_refused_not_wrapped() {
        let mut p = payment();
        p.version = u64::MAX;
        let e = PaymentRow::from_payment(&p).unwrap_err();
        assert_eq!(e.field, "version");
        p.version = 1;
        p.confirmations = u32::MAX;
        assert_eq!(
            PaymentRow::from_payment(&p).unwrap_err().field,
            "confirmations"
        );
    }

    #[test]
    fn the_upsert_is_guarded_by_version() {
        assert!(UPSERT_SQL.ends_with("WHERE p.version < EXCLUDED.version"));
        // Every column of the row type is written.
        let v = serde_json::to_value(PaymentRow::from_payment(&payment()).unwrap()).unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(
                UPSERT_SQL.contains(&format!("{k} = EXCLUDED.{k}")) || k == "id",
                "{k}"
            );
        }
    }
}
