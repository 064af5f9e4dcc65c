//! The redb tables. Values are JSON so that a later schema can add fields with defaults.

use redb::TableDefinition;

/// Format facts of the file: `app`, `schema_version`, counters.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// seq → Payment (JSON).
pub const PAYMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("payments");
/// Public payment id → seq.
pub const BY_ID: TableDefinition<&str, u64> = TableDefinition::new("payments_by_id");
/// Receive address → seq. Invariant: an address appears at most once (never reused).
pub const BY_ADDRESS: TableDefinition<&str, u64> = TableDefinition::new("payments_by_address");
/// Application reference → seq. Invariant: references are unique.
pub const BY_REFERENCE: TableDefinition<&str, u64> = TableDefinition::new("payments_by_reference");
/// Status name → number of payments in it; kept in the same transactions as the payments.
pub const STATUS_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("status_counts");
/// (seq, n) → Event (JSON): the history of each payment, in order.
pub const EVENTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("payment_events");
/// n → BDK wallet ChangeSet (JSON). Append-only; merged in order at load.
pub const WALLET: TableDefinition<u64, &[u8]> = TableDefinition::new("wallet_changesets");
/// txid → cached transaction summary (JSON).
pub const TX_CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("tx_cache");
/// n → OutboxItem (JSON): changes waiting for the downstream sink, in order.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// n → AuditEntry (JSON): operator-visible record of administrative actions.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_log");

/// (keychain, derivation index) → the script's last Electrum status hash whose chain data
/// is committed ("" = no history). Written with the wallet changes it summarises, so a
/// (re)connect only syncs scripts whose status moved since.
pub const SCRIPT_STATUS: TableDefinition<(u8, u32), &str> = TableDefinition::new("script_status");
/// Receive index → payment seq, for every payment whose address is watched (open, or
/// closed but inside its late-payment window). Start-up reads this, not every payment.
pub const WATCH: TableDefinition<u32, u64> = TableDefinition::new("watch");
/// `txid:vout` → Receipt (JSON): money no payment counts (see `receipts`).
pub const RECEIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("receipts");

/// seq → ArchivedPayment (JSON): payments moved out of PAYMENTS by `archive`; their
/// indexes and events stay.
pub const PAYMENTS_ARCHIVE: TableDefinition<u64, &[u8]> = TableDefinition::new("payments_archive");

/// Unsigned txid → TransferRecord (JSON): transactions the appliance built to move money.
pub const TRANSFERS: TableDefinition<&str, &[u8]> = TableDefinition::new("transfers");

/// Value of `META["app"]`: tells our files from other redb files.
pub const APP_MAGIC: &[u8] = b"snakkaz-pay";
/// Current layout version; a file with a newer one is refused.
pub const SCHEMA_VERSION: u64 = 2;
/// META key set once the chain was scanned for addresses used before this appliance
/// (at wallet creation, after restore or import).
pub const CHAIN_SCANNED_KEY: &str = "chain_scanned";
/// META key set when a payment change was not queued because no sink was configured;
/// the sink re-queues everything once when it starts and finds it.
pub const OUTBOX_SKIPPED_KEY: &str = "outbox_skipped";
