//! Payments brought over from another wallet (an Electrum wallet's open requests) at an
//! address that wallet already handed out.

use super::{Outcome, Store, StoreError, WriteBatch};
use crate::payments::{Event, Payment};

/// What [`Store::import_payment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored with this seq.
    Imported(u64),
    /// A payment already uses this address (an earlier import, or a snakkaz-pay payment).
    AddressTaken(String),
    /// A payment already has this reference (an earlier import).
    ReferenceTaken(String),
}

impl Store {
    /// Stores `payment` (its seq is assigned here) at its existing address and index.
    ///
    /// For offline use with the daemon stopped: the check for an existing payment at the
    /// address and the write are two steps, which is safe only with a single writer.
    pub fn import_payment(
        &self,
        mut payment: Payment,
        event: Event,
    ) -> Result<ImportOutcome, StoreError> {
        if let Some(p) = self.payment_by_address(&payment.address)? {
            return Ok(ImportOutcome::AddressTaken(p.id));
        }
        payment.seq = self.last_seq()? + 1;
        let seq = payment.seq;
        match self.commit_blocking(WriteBatch {
            create: Some((payment, event)),
            ..Default::default()
        })? {
            Outcome::Committed => Ok(ImportOutcome::Imported(seq)),
            Outcome::DuplicateReference(p) => Ok(ImportOutcome::ReferenceTaken(p.id)),
        }
    }
}
