//! The operator's side of unattributed receipts: listing them and assigning one to a
//! payment (recorded on the receipt, in the payment's history and in the audit log).

use super::{App, AppError, CONFLICT_RETRIES};
use crate::payments::receipt::Receipt;
use crate::payments::{Event, Payment};
use crate::store::{AuditEntry, ReceiptWrite, StoreError, WriteBatch};

/// Longest note kept with an assignment.
const MAX_NOTE_CHARS: usize = 500;

impl App {
    /// Every receipt, open ones first, newest first within each group.
    pub fn receipts(&self) -> Result<Vec<Receipt>, AppError> {
        let mut v = self.store.receipts()?;
        v.sort_by_key(|r| (!r.open(), std::cmp::Reverse(r.first_seen_at)));
        Ok(v)
    }

    /// Assigns a receipt to a payment: the receipt stops being a problem and the payment's
    /// history says which money the operator counted for it. Amounts and status do not
    /// change: the lifecycle counts only what reached the payment's own address in time.
    pub async fn assign_receipt(
        &self,
        outpoint: &str,
        payment_id: &str,
        note: Option<String>,
        source: &str,
    ) -> Result<(Receipt, Payment), AppError> {
        if let Some(n) = &note
            && (n.chars().count() > MAX_NOTE_CHARS || n.chars().any(char::is_control))
        {
            return Err(AppError::Invalid {
                field: "note",
                message: format!(
                    "at most {MAX_NOTE_CHARS} characters of printable text; shorten it"
                ),
            });
        }
        let receipt = self.store.receipt(outpoint)?.ok_or_else(|| AppError::Invalid {
            field: "outpoint",
            message: format!(
                "no unattributed receipt {outpoint:?}; list them with `snakkaz-pay receipts` (txid:vout)"
            ),
        })?;
        if receipt.gone {
            return Err(AppError::Conflict(format!(
                "receipt {outpoint} left the chain (reorg or double spend); there is no money to assign"
            )));
        }
        if let Some(to) = &receipt.assigned_to {
            if to == payment_id {
                let (p, _) = self.payment(payment_id)?;
                return Ok((receipt, p));
            }
            return Err(AppError::Conflict(format!(
                "receipt {outpoint} is already assigned to payment {to}"
            )));
        }
        for _ in 0..CONFLICT_RETRIES {
            let (p, _) = self.payment(payment_id)?;
            let now = crate::clock::now();
            let mut updated = p.clone();
            updated.version += 1;
            updated.updated_at = now;
            let event = Event {
                at: now,
                from: Some(p.status),
                to: p.status,
                reason: format!(
                    "operator assigned receipt {outpoint} ({} sat) to this payment{}",
                    receipt.amount_sat,
                    note.as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
                txids: vec![receipt.txid.clone()],
            };
            let batch = WriteBatch {
                updates: vec![(updated.clone(), vec![event])],
                receipts: vec![ReceiptWrite::Assign {
                    outpoint: outpoint.to_owned(),
                    payment_id: payment_id.to_owned(),
                    note: note.clone(),
                    at: now,
                }],
                audit: vec![AuditEntry {
                    at: now,
                    action: "receipt.assign".into(),
                    detail: format!(
                        "receipt {outpoint} ({} sat) assigned to payment {payment_id}",
                        receipt.amount_sat
                    ),
                    source: source.to_owned(),
                }],
                ..Default::default()
            };
            match self.store.commit(batch).await {
                Ok(_) => {
                    let r = self.store.receipt(outpoint)?.unwrap_or(receipt);
                    return Ok((r, updated));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(format!(
            "payment {payment_id} kept changing; try again"
        )))
    }
}
