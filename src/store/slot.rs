//! The open database, replaceable: after an I/O error (a full disk) redb refuses every
//! further transaction until the file is opened again, so the writer reopens it once the
//! failure is recorded, and again until space returns.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

use super::StoreError;

/// Longest wait for readers to finish with the old database before a reopen.
const READERS_GONE: Duration = Duration::from_secs(5);

/// The database handle every reader and the writer take from.
#[derive(Debug)]
pub(super) struct Slot {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
    /// The I/O failure the database is recovering from, while it is.
    failure: Mutex<Option<String>>,
}

impl Slot {
    pub(super) fn new(path: PathBuf, db: Database) -> Arc<Slot> {
        Arc::new(Slot {
            path,
            db: RwLock::new(Some(Arc::new(db))),
            failure: Mutex::new(None),
        })
    }

    /// The open database, or why there is none right now.
    pub(super) fn get(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .expect("database slot lock")
            .clone()
            .ok_or_else(|| StoreError::Unavailable {
                detail: self
                    .failure()
                    .unwrap_or_else(|| "the database is being reopened".into()),
            })
    }

    /// The I/O failure being recovered from.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.lock().expect("database failure lock").clone()
    }

    /// Records an I/O failure; the next [`Slot::reopen`] clears it when it succeeds.
    pub(super) fn failed(&self, e: &StoreError) {
        let text = if e.is_disk_full() {
            format!(
                "the disk holding {} is full; free space (nothing is lost: changes are retried)",
                self.path.display()
            )
        } else {
            format!("writing {} failed: {e}", self.path.display())
        };
        *self.failure.lock().expect("database failure lock") = Some(text);
    }

    /// Closes the database and opens it again (redb repairs it if needed). False when
    /// it could not be reopened yet; the caller tries again later.
    pub(super) fn reopen(&self) -> bool {
        let mut slot = self.db.write().expect("database slot lock");
        if let Some(mut old) = slot.take() {
            // Readers hold a clone for the length of one read transaction.
            let deadline = Instant::now() + READERS_GONE;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return false;
                    }
                }
            }
        }
        match Database::builder()
            .set_cache_size(super::CACHE_BYTES)
            .open(&self.path)
        {
            Ok(db) => {
                // A failed write is not always visible on open: try one.
                let writable = db
                    .begin_write()
                    .map_err(redb::Error::from)
                    .and_then(|w| w.commit().map_err(redb::Error::from));
                match writable {
                    Ok(()) => {
                        *slot = Some(Arc::new(db));
                        tracing::info!(path = %self.path.display(), "database reopened after an I/O failure; writing again");
                        *self.failure.lock().expect("database failure lock") = None;
                        true
                    }
                    Err(e) => {
                        // Still full: keep it open for reads, try writing again later.
                        tracing::debug!(error = %e, "database still not writable");
                        *slot = Some(Arc::new(db));
                        false
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "reopening the database failed; retrying");
                false
            }
        }
    }
}
