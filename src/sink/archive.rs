//! `archive`'s half in Supabase: the archived payments' rows move from
//! `electrum_payments` to `electrum_payments_archive` in one Postgres transaction (the
//! archive row is written from the store's copy, so a row the sink never delivered is
//! archived too).

use std::time::Duration;

use super::conn::{Target, error_text};
use super::row::PaymentRow;
use super::{SinkError, SinkSettings};
use crate::payments::Payment;

/// How long the move may take.
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upserts the archive rows (`$1` = the rows as JSON, `$2` = Unix seconds of the move).
pub const ARCHIVE_UPSERT_SQL: &str = "\
INSERT INTO electrum_payments_archive AS p (id, reference, description, bitcoin_address,
    amount_sat, received_sat, status, confirmations, txids, flags, created_at, updated_at,
    expires_at, first_seen_at, confirmed_at, version, synced_at, archived_at)
SELECT r.id, r.reference, r.description, r.bitcoin_address, r.amount_sat, r.received_sat,
    r.status, r.confirmations, r.txids, r.flags, to_timestamp(r.created_at),
    to_timestamp(r.updated_at), to_timestamp(r.expires_at), to_timestamp(r.first_seen_at),
    to_timestamp(r.confirmed_at), r.version, now(), to_timestamp($2::bigint)
FROM jsonb_to_recordset($1::text::jsonb) AS r(id text, reference text, description text,
    bitcoin_address text, amount_sat bigint, received_sat bigint, status text,
    confirmations integer, txids text[], flags text[], created_at bigint, updated_at bigint,
    expires_at bigint, first_seen_at bigint, confirmed_at bigint, version bigint)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, received_sat = EXCLUDED.received_sat,
    confirmations = EXCLUDED.confirmations, txids = EXCLUDED.txids, flags = EXCLUDED.flags,
    updated_at = EXCLUDED.updated_at, first_seen_at = EXCLUDED.first_seen_at,
    confirmed_at = EXCLUDED.confirmed_at, version = EXCLUDED.version, synced_at = now()
WHERE p.version <= EXCLUDED.version";

/// Removes the live rows of the archived payments (`$1` = their ids).
pub const LIVE_DELETE_SQL: &str = "DELETE FROM electrum_payments WHERE id = ANY($1)";

/// Moves these archived payments' rows in one transaction; returns how many live rows
/// were removed.
pub async fn move_rows(
    settings: &SinkSettings,
    payments: &[Payment],
    archived_at: u64,
) -> Result<u64, SinkError> {
    let target = Target::new(&settings.url, settings.ca_file.as_deref())?;
    let mut client = target.connect(CONNECT_TIMEOUT).await?;
    let rows: Vec<PaymentRow> = payments
        .iter()
        .map(PaymentRow::from_payment)
        .collect::<Result<_, _>>()?;
    let json = serde_json::to_string(&rows).expect("rows serialize to JSON");
    let ids: Vec<String> = payments.iter().map(|p| p.id.clone()).collect();
    let at = i64::try_from(archived_at).unwrap_or(i64::MAX);
    let work = async {
        let tx = client.transaction().await?;
        tx.execute(ARCHIVE_UPSERT_SQL, &[&json, &at]).await?;
        let removed = tx.execute(LIVE_DELETE_SQL, &[&ids]).await?;
        tx.commit().await?;
        Ok::<u64, tokio_postgres::Error>(removed)
    };
    match tokio::time::timeout(MOVE_TIMEOUT, work).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(SinkError::Write {
            detail: target.scrub(&error_text(&e)),
            source: e,
        }),
        Err(_) => Err(SinkError::WriteTimeout {
            secs: MOVE_TIMEOUT.as_secs(),
        }),
    }
}
