//! What `reconcile` reads from the downstream Postgres: the mirrored rows of a page of
//! payments, to tell a missing or stale row from a current one.

use std::collections::HashMap;
use std::time::Duration;

use super::conn::{Target, error_text};
use super::{SinkError, SinkSettings};

/// How long reading the rows may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The mirrored facts of one payment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredRow {
    /// `status` column.
    pub status: String,
    /// `received_sat` column.
    pub received_sat: u64,
    /// The appliance's version of the payment the row holds.
    pub version: u64,
    /// Found in `electrum_payments_archive` rather than `electrum_payments`.
    pub archived: bool,
}

/// An open read session on the sink's database.
pub struct SinkReader {
    target: Target,
    client: tokio_postgres::Client,
}

impl SinkReader {
    /// Connects with the sink's settings.
    pub async fn connect(settings: &SinkSettings) -> Result<SinkReader, SinkError> {
        let target = Target::new(&settings.url, settings.ca_file.as_deref())?;
        let client = target.connect(CONNECT_TIMEOUT).await?;
        Ok(SinkReader { target, client })
    }

    /// `user@host:port/db (sslmode)`.
    pub fn label(&self) -> &str {
        self.target.label()
    }

    /// The rows of these payment ids, live or archived (absent ids have no row).
    pub async fn rows(&self, ids: &[String]) -> Result<HashMap<String, MirroredRow>, SinkError> {
        let sql = "SELECT id, status, received_sat, version, false FROM electrum_payments WHERE id = ANY($1) \
                   UNION ALL \
                   SELECT id, status, received_sat, version, true FROM electrum_payments_archive WHERE id = ANY($1)";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&ids];
        let query = self.client.query(sql, &params);
        let rows = match tokio::time::timeout(READ_TIMEOUT, query).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                return Err(SinkError::Read {
                    detail: self.target.scrub(&error_text(&e)),
                    source: Some(e),
                });
            }
            Err(_) => {
                return Err(SinkError::Read {
                    detail: format!("no answer within {} s", READ_TIMEOUT.as_secs()),
                    source: None,
                });
            }
        };
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            let received: i64 = r.get(2);
            let version: i64 = r.get(3);
            let row = MirroredRow {
                status: r.get(1),
                received_sat: u64::try_from(received).unwrap_or(0),
                version: u64::try_from(version).unwrap_or(0),
                archived: r.get(4),
            };
            // A live row wins over an archived copy of the same id.
            match out.get(&id) {
                Some(MirroredRow {
                    archived: false, ..
                }) => {}
                _ => {
                    out.insert(id, row);
                }
            }
        }
        Ok(out)
    }
}
