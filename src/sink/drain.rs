//! The drain loop: outbox → Postgres, in order, in batches, with backoff.
//!
//! An outbox item only says which payment changed; the row sent is the payment's
//! current state read after the item, so it is never older than any item it clears.
//! Items leave the outbox only after Postgres committed the batch; a crash in between
//! resends them, and the version guard makes the resend harmless.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::conn::{Target, error_text};
use super::extra_rows::{
    RECEIPT_UPSERT_SQL, ReceiptRow, TX_UPSERT_SQL, TxRow, WALLET_UPSERT_SQL, WalletParams,
};
use super::row::{PaymentRow, UPSERT_SQL};
use super::{SharedStatus, SinkError};
use crate::store::{Store, WalletSummary, WriteBatch};

/// Outbox items per batch: one statement, one round trip, one commit.
const BATCH: usize = 256;
/// How often an empty outbox is looked at again (the store has no change notification;
/// reading the first key of a redb table is cheap).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// First retry delay after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay; small enough that the mirror converges well within 30 s of
/// Postgres coming back.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Limit of one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit of one batch's statement, so a black-holed link cannot stall the sink.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Drain {
    pub(super) store: Store,
    pub(super) target: Arc<Target>,
    pub(super) manage_schema: bool,
    pub(super) status: SharedStatus,
    pub(super) cancel: CancellationToken,
    /// The wallet summary last written, so an unchanged one is not resent every batch.
    pub(super) last_wallet: std::sync::Mutex<Option<WalletSummary>>,
    /// The receipts version last mirrored (`None`: not yet in this run).
    pub(super) last_receipts: std::sync::Mutex<Option<u64>>,
}

impl Drain {
    pub(super) async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut client: Option<Client> = None;
        let mut last_logged: Option<String> = None;
        while !self.cancel.is_cancelled() {
            let c = match client.take().filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => {
                    self.status.update(|s| s.connected = false);
                    let connected = tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        r = self.connect() => r,
                    };
                    match connected {
                        Ok(c) => {
                            tracing::info!(target = %self.target.label(), "Supabase sink connected");
                            self.status.update(|s| {
                                s.connected = true;
                                s.last_error = None;
                            });
                            last_logged = None;
                            backoff = MIN_BACKOFF;
                            c
                        }
                        Err(e) => {
                            self.failed(&e, &mut last_logged);
                            if !self.pause(jitter(backoff)).await {
                                break;
                            }
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
            };
            // Dropping a batch mid-flight is safe: its items stay in the outbox.
            let r = tokio::select! {
                _ = self.cancel.cancelled() => break,
                r = self.deliver(&c) => r,
            };
            client = Some(c);
            match r {
                Ok(0) => {
                    if !self.pause(IDLE_POLL).await {
                        break;
                    }
                }
                Ok(_) => backoff = MIN_BACKOFF,
                Err(e) => {
                    self.failed(&e, &mut last_logged);
                    // After a failed or timed-out write the session's state is unknown
                    // (a statement may still run): start over on a fresh one. Local
                    // failures (store, row) say nothing about the session.
                    let local = matches!(e, SinkError::Store(_) | SinkError::Row(_));
                    if !local || client.as_ref().is_some_and(|c| c.is_closed()) {
                        client = None;
                        self.status.update(|s| s.connected = false);
                    }
                    if !self.pause(jitter(backoff)).await {
                        break;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.status.update(|s| s.connected = false);
    }

    async fn connect(&self) -> Result<Client, SinkError> {
        let mut client = self.target.connect(CONNECT_TIMEOUT).await?;
        if self.manage_schema {
            let applied =
                super::schema::apply(&mut client)
                    .await
                    .map_err(|e| SinkError::Schema {
                        detail: self.target.scrub(&error_text(&e)),
                        source: e,
                    })?;
            if !applied.is_empty() {
                let applied: Vec<String> = applied.iter().map(i32::to_string).collect();
                tracing::info!(applied = %applied.join(", "), "Supabase schema migrations applied");
            }
        }
        Ok(client)
    }

    /// Sends one batch; returns how many outbox items it cleared.
    async fn deliver(&self, client: &Client) -> Result<usize, SinkError> {
        self.send_receipts(client).await?;
        let items = self.store.outbox_peek(BATCH)?;
        if items.is_empty() {
            return Ok(0);
        }
        let mut seen = BTreeSet::new();
        let mut rows = Vec::new();
        let mut txids = BTreeSet::new();
        for (_, item) in &items {
            if !seen.insert(item.payment_id.as_str()) {
                continue;
            }
            // A payment the store no longer has (archived) has nothing left to mirror.
            if let Some(p) = self.store.payment(&item.payment_id)? {
                rows.push(PaymentRow::from_payment(&p)?);
                txids.extend(p.txids);
            }
        }
        // The transactions the batch's payments name, as the processor cached them.
        let mut tx_rows = Vec::new();
        for txid in &txids {
            if let Some(e) = self.store.cached_tx(txid)? {
                tx_rows.push(TxRow::from(&e));
            }
        }
        self.send_extras(client, &tx_rows).await?;
        if !rows.is_empty() {
            let written = self.upsert_json(client, UPSERT_SQL, &rows).await?;
            tracing::debug!(rows = rows.len(), written, "Supabase batch committed");
        }
        // Only now, with Postgres committed, may the items leave the outbox.
        let keys: Vec<u64> = items.iter().map(|(k, _)| *k).collect();
        let n = keys.len();
        self.store
            .commit(WriteBatch {
                outbox_done: keys,
                ..Default::default()
            })
            .await?;
        self.status.update(|s| {
            s.delivered_total += n as u64;
            s.last_delivery_at = Some(crate::clock::now());
        });
        Ok(n)
    }

    /// Upserts cached transactions and, when it changed, the wallet summary.
    async fn send_extras(&self, client: &Client, tx_rows: &[TxRow]) -> Result<(), SinkError> {
        let write_err = |e: tokio_postgres::Error| SinkError::Write {
            detail: self.target.scrub(&error_text(&e)),
            source: e,
        };
        let timeout = |_| SinkError::WriteTimeout {
            secs: WRITE_TIMEOUT.as_secs(),
        };
        if !tx_rows.is_empty() {
            self.upsert_json(client, TX_UPSERT_SQL, tx_rows).await?;
        }
        let summary = self.store.wallet_summary()?;
        let unchanged = |w: &WalletSummary| {
            self.last_wallet.lock().expect("sink wallet lock").as_ref() == Some(w)
        };
        if let Some(w) = summary.filter(|w| !unchanged(w)) {
            let p = WalletParams::from(&w);
            tokio::time::timeout(
                WRITE_TIMEOUT,
                client.execute(
                    WALLET_UPSERT_SQL,
                    &[
                        &p.descriptor_checksum,
                        &p.change_descriptor_checksum,
                        &p.network,
                        &p.addresses_in_use,
                        &p.confirmed_sat,
                        &p.unconfirmed_sat,
                        &p.tip_height,
                        &p.updated_at,
                    ],
                ),
            )
            .await
            .map_err(timeout)?
            .map_err(write_err)?;
            *self.last_wallet.lock().expect("sink wallet lock") = Some(w);
        }
        Ok(())
    }

    /// Runs one of the JSON-array upserts (`$1` = the rows as JSON) within the write limit.
    async fn upsert_json<T: serde::Serialize>(
        &self,
        client: &Client,
        sql: &str,
        rows: &[T],
    ) -> Result<u64, SinkError> {
        let json = serde_json::to_string(rows).expect("rows serialize to JSON");
        tokio::time::timeout(WRITE_TIMEOUT, client.execute(sql, &[&json]))
            .await
            .map_err(|_| SinkError::WriteTimeout {
                secs: WRITE_TIMEOUT.as_secs(),
            })?
            .map_err(|e| SinkError::Write {
                detail: self.target.scrub(&error_text(&e)),
                source: e,
            })
    }

    /// Mirrors every receipt when any changed since the last mirror (receipts are few).
    async fn send_receipts(&self, client: &Client) -> Result<(), SinkError> {
        let version = self.store.receipts_version()?;
        if *self.last_receipts.lock().expect("sink receipts lock") == Some(version) {
            return Ok(());
        }
        let rows: Vec<ReceiptRow> = self
            .store
            .receipts()?
            .iter()
            .map(ReceiptRow::from)
            .collect();
        if !rows.is_empty() {
            self.upsert_json(client, RECEIPT_UPSERT_SQL, &rows).await?;
            tracing::debug!(rows = rows.len(), "receipts mirrored to Supabase");
        }
        *self.last_receipts.lock().expect("sink receipts lock") = Some(version);
        Ok(())
    }

    fn failed(&self, e: &SinkError, last_logged: &mut Option<String>) {
        let text = self.target.scrub(&e.to_string());
        // Log a lasting failure once, not on every retry; the status page shows it throughout.
        if last_logged.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "Supabase sink failed; retrying with backoff");
            *last_logged = Some(text.clone());
        } else {
            tracing::debug!(error = %text, "Supabase sink still failing");
        }
        self.status.update(|s| {
            s.errors_total += 1;
            s.last_error = Some(text);
            s.last_error_at = Some(crate::clock::now());
        });
    }

    /// Sleeps unless cancelled first; false when cancelled.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

/// A delay between half of `d` and `d`, so appliances that lost Postgres together do
/// not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    crate::net::jitter(d, 500, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!((500..=1000).contains(&j.as_millis()), "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
