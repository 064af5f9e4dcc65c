//! Consistent snapshots: every table copied from ONE read transaction into a new,
//! self-contained redb file, fsynced and checked by reopening.
//!
//! Copying a live redb file is unsafe (a commit may be half on disk); a read transaction
//! sees one committed state, so the copy is exactly the database as of one commit: every
//! payment the API had answered for before the snapshot began is in it.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::tables::*;
use super::{DbResultExt, Store, StoreError};

/// What a snapshot holds: the number of rows of each table, and the file's size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    /// Table name → rows copied.
    pub tables: BTreeMap<String, u64>,
    /// Size of the snapshot file in bytes.
    pub bytes: u64,
}

/// Copies one table and records its row count.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    rtx: &ReadTransaction,
    wtx: &WriteTransaction,
    counts: &mut BTreeMap<String, u64>,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let src = rtx.open_table(def).db("snapshot: open source table")?;
    let mut dst = wtx.open_table(def).db("snapshot: create table")?;
    let mut n = 0u64;
    for row in src.iter().db("snapshot: iterate")? {
        let (k, v) = row.db("snapshot: read row")?;
        dst.insert(k.value(), v.value()).db("snapshot: write row")?;
        n += 1;
    }
    counts.insert(def.name().to_owned(), n);
    Ok(())
}

/// Rows of one table in a (reopened) database.
fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    rtx: &ReadTransaction,
    counts: &mut BTreeMap<String, u64>,
    def: TableDefinition<K, V>,
) -> Result<(), StoreError> {
    let t = match rtx.open_table(def) {
        Ok(t) => t,
        // A backup taken before the table existed (e.g. `payments_archive`): no rows.
        Err(redb::TableError::TableDoesNotExist(_)) => {
            counts.insert(def.name().to_owned(), 0);
            return Ok(());
        }
        Err(e) => return Err(e).db("snapshot check: open table"),
    };
    counts.insert(
        def.name().to_owned(),
        t.len().db("snapshot check: count rows")?,
    );
    Ok(())
}

/// Calls `$f(args.., TABLE)` for every table of the store. A new table const must be
/// added here too: `snapshot_to` refuses a database with a table missing from this list.
macro_rules! each_table {
    ($f:ident, $($arg:expr),*) => {{
        $f($($arg,)* META)?;
        $f($($arg,)* PAYMENTS)?;
        $f($($arg,)* BY_ID)?;
        $f($($arg,)* BY_ADDRESS)?;
        $f($($arg,)* BY_REFERENCE)?;
        $f($($arg,)* STATUS_COUNTS)?;
        $f($($arg,)* EVENTS)?;
        $f($($arg,)* WALLET)?;
        $f($($arg,)* TX_CACHE)?;
        $f($($arg,)* OUTBOX)?;
        $f($($arg,)* AUDIT)?;
        $f($($arg,)* SCRIPT_STATUS)?;
        $f($($arg,)* WATCH)?;
        $f($($arg,)* RECEIPTS)?;
        $f($($arg,)* TRANSFERS)?;
        $f($($arg,)* PAYMENTS_ARCHIVE)?;
    }};
}

fn count_rows(rtx: &ReadTransaction) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut m = BTreeMap::new();
    each_table!(rows, rtx, &mut m);
    Ok(m)
}

fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::Db {
        op,
        source: std::sync::Arc::new(redb::Error::Io(e)),
    }
}

impl Store {
    /// Writes a consistent copy of every table, read in one transaction, to the new file
    /// `dest` (which must not exist), fsyncs it and checks it by reopening.
    pub fn snapshot_to(&self, dest: &Path) -> Result<SnapshotInfo, StoreError> {
        let rtx = self.db()?.begin_read().db("snapshot: begin read")?;
        // Every table of the source must be one we copy: a table added without updating
        // this file would otherwise be silently missing from backups.
        let known: Vec<String> = count_rows(&rtx)?.into_keys().collect();
        for t in rtx.list_tables().db("snapshot: list tables")? {
            if !known.iter().any(|k| k == t.name()) {
                return Err(StoreError::Corrupt {
                    what: "snapshot",
                    detail: format!(
                        "table {:?} is not known to the snapshot code; this build cannot back it up",
                        t.name()
                    ),
                });
            }
        }
        if rtx
            .list_multimap_tables()
            .db("snapshot: list tables")?
            .next()
            .is_some()
        {
            return Err(StoreError::Corrupt {
                what: "snapshot",
                detail: "the database has a multimap table the snapshot code does not know".into(),
            });
        }
        create_private(dest)?;
        let copied = {
            let mut out = Database::create(dest).db("snapshot: create file")?;
            let wtx = out.begin_write().db("snapshot: begin write")?;
            let mut copied = BTreeMap::new();
            each_table!(copy, &rtx, &wtx, &mut copied);
            // The default durability fsyncs the file at commit.
            wtx.commit().db("snapshot: commit")?;
            // One big transaction leaves free pages behind; a backup should be small.
            out.compact().db("snapshot: compact")?;
            copied
        };
        drop(rtx);
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(io_err("snapshot: fsync"))?;
        let found = check_file(dest)?;
        if found != copied {
            return Err(StoreError::Corrupt {
                what: "snapshot",
                detail: format!("reopened snapshot has rows {found:?}, copied {copied:?}"),
            });
        }
        let bytes = std::fs::metadata(dest)
            .map_err(io_err("snapshot: stat"))?
            .len();
        Ok(SnapshotInfo {
            tables: copied,
            bytes,
        })
    }
}

/// Snapshot of a database file that no process holds (the daemon is stopped).
pub fn snapshot_file(src: &Path, dest: &Path) -> Result<SnapshotInfo, StoreError> {
    Store::open(src)?.snapshot_to(dest)
}

/// Reopens a snapshot, runs redb's integrity check and counts the rows of every table.
pub fn check_file(path: &Path) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut db = Database::open(path).map_err(|e| {
        tracing::debug!(error = %e, "redb refused the snapshot");
        StoreError::Foreign {
            path: path.to_owned(),
        }
    })?;
    if !db.check_integrity().db("snapshot check: integrity")? {
        return Err(StoreError::Corrupt {
            what: "snapshot",
            detail: format!("{} failed redb's integrity check", path.display()),
        });
    }
    let rtx = db.begin_read().db("snapshot check: begin read")?;
    count_rows(&rtx)
}

/// Creates `path` empty with owner-only permissions; refuses an existing file.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .map(drop)
        .map_err(io_err("snapshot: create file"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBatch;

    #[test]
    fn a_backup_from_before_a_table_existed_still_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let db = Database::create(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        wtx.open_table(PAYMENTS).unwrap();
        wtx.commit().unwrap();
        drop(db);
        let counts = check_file(&path).unwrap();
        assert_eq!(counts.get("payments_archive"), Some(&0));
        assert_eq!(counts.get("payments"), Some(&0));
    }

    #[test]
    fn snapshot_copies_every_row_and_reopens_as_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        store
            .commit_blocking(WriteBatch {
                audit: vec![crate::store::AuditEntry {
                    at: 1,
                    action: "test".into(),
                    detail: "row".into(),
                    source: "test".into(),
                }],
                ..Default::default()
            })
            .unwrap();
        let dest = dir.path().join("snap.redb");
        let info = store.snapshot_to(&dest).unwrap();
        assert_eq!(info.tables["audit_log"], 1);
        assert_eq!(info.tables.len(), 16);
        // The snapshot is a complete store of its own.
        let copy = Store::open(&dest).unwrap();
        assert_eq!(copy.audit_log(10).unwrap()[0].detail, "row");
        // A second snapshot to the same place is refused, not overwritten.
        assert!(store.snapshot_to(&dest).is_err());
    }

    #[test]
    fn a_truncated_snapshot_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.redb")).unwrap();
        let dest = dir.path().join("snap.redb");
        store.snapshot_to(&dest).unwrap();
        let len = std::fs::metadata(&dest).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&dest).unwrap();
        f.set_len(len / 3).unwrap();
        assert!(check_file(&dest).is_err());
    }
}
