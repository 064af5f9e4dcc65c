//! The Supabase sink: mirrors every payment change from the store's outbox into the
//! downstream Postgres, exactly, in order, through outages. Off unless configured.
//!
//! Split: `schema` (numbered migrations), `conn` (connection string, TLS), `row` (the
//! pure Payment → row mapping), `drain` (the loop). Only this module talks Postgres.

pub mod archive;
mod conn;
mod drain;
mod extra_rows;
pub mod reconcile;
pub mod row;
pub mod schema;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::secret::Secret;
use crate::store::{AuditEntry, Store, StoreError, WriteBatch};
pub use conn::{Target, TlsMode};

/// A failure of the sink. Texts never contain the connection string or its password.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The connection string is unusable.
    #[error("SNAKKAZ_PAY_SUPABASE_DB_URL_FILE: {detail}")]
    Url {
        /// What is wrong (without the secret).
        detail: String,
    },
    /// The CA file is unusable.
    #[error("SNAKKAZ_PAY_SUPABASE_CA_FILE: {}: {detail}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the TLS settings.
    #[error("TLS setup failed: {detail}")]
    Tls {
        /// rustls's message.
        detail: String,
    },
    /// Connecting or logging in failed.
    #[error("connecting to Postgres {target} failed: {detail}")]
    Connect {
        /// `user@host:port/db`.
        target: String,
        /// The error and its causes, scrubbed.
        detail: String,
        /// tokio-postgres's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Connecting took too long.
    #[error("connecting to Postgres {target} timed out after {secs} s")]
    ConnectTimeout {
        /// `user@host:port/db`.
        target: String,
        /// The limit.
        secs: u64,
    },
    /// Applying the schema failed.
    #[error("applying the schema failed: {detail}")]
    Schema {
        /// The error and its causes, scrubbed.
        detail: String,
        /// tokio-postgres's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A batch was not committed.
    #[error("writing to Postgres failed: {detail}")]
    Write {
        /// The error and its causes, scrubbed.
        detail: String,
        /// tokio-postgres's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Reading rows back (reconcile) failed.
    #[error("reading from Postgres failed: {detail}")]
    Read {
        /// The error and its causes, scrubbed.
        detail: String,
        /// tokio-postgres's error (none for a time-out).
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    /// A batch did not finish in time.
    #[error("writing to Postgres timed out after {secs} s")]
    WriteTimeout {
        /// The limit.
        secs: u64,
    },
    /// A payment cannot be represented in its row.
    #[error(transparent)]
    Row(#[from] row::RowError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the daemon needs to run the sink (built from the configuration).
#[derive(Debug)]
pub struct SinkSettings {
    /// Connection string, read from SNAKKAZ_PAY_SUPABASE_DB_URL_FILE.
    pub url: Secret,
    /// Apply the schema on connect (SNAKKAZ_PAY_SUPABASE_MANAGE_SCHEMA).
    pub manage_schema: bool,
    /// PEM trust anchors for verify-full (SNAKKAZ_PAY_SUPABASE_CA_FILE).
    pub ca_file: Option<PathBuf>,
    /// Oldest unsent change before the status raises an alert (SNAKKAZ_PAY_SINK_LAG_ALERT_SECS).
    pub lag_alert: Duration,
}

/// The sink's state as the status page and metrics see it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SinkStatus {
    /// A sink is configured.
    pub enabled: bool,
    /// `user@host:port/db (sslmode=...)`, never the password.
    pub target: Option<String>,
    /// A session to Postgres is up.
    pub connected: bool,
    /// The last failure, cleared by the next successful connection.
    pub last_error: Option<String>,
    /// Unix seconds of the last failure.
    pub last_error_at: Option<u64>,
    /// Failures since start (for `snakkaz_pay_sink_errors_total`).
    pub errors_total: u64,
    /// Outbox items delivered since start.
    pub delivered_total: u64,
    /// Unix seconds of the last committed batch.
    pub last_delivery_at: Option<u64>,
    /// Lag (seconds) above which the status reports a problem.
    pub lag_alert_secs: u64,
}

/// The `sink` section of `/api/status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SinkReport {
    /// A sink is configured.
    pub enabled: bool,
    /// A session to Postgres is up.
    pub connected: bool,
    /// `user@host:port/db (sslmode=...)`, never the password.
    pub target: Option<String>,
    /// The last failure (never containing the secret).
    pub last_error: Option<String>,
    /// Failures since start.
    pub errors_total: u64,
    /// Outbox items delivered since start.
    pub delivered_total: u64,
    /// Changes waiting in the outbox.
    pub pending: u64,
    /// Age of the oldest waiting change, in seconds.
    pub oldest_age_secs: Option<u64>,
    /// The configured alert bound, in seconds.
    pub lag_alert_secs: u64,
    /// The oldest waiting change is older than the bound.
    pub lagging: bool,
}

/// The sink's status, shared between the sink task and its readers.
#[derive(Debug, Clone, Default)]
pub struct SharedStatus(Arc<Mutex<SinkStatus>>);

impl SharedStatus {
    /// A copy of the current status.
    pub fn snapshot(&self) -> SinkStatus {
        self.0.lock().expect("sink status lock").clone()
    }

    /// The status section and, when the sink needs attention, the problem to show.
    pub fn report(
        &self,
        pending: u64,
        oldest_age_secs: Option<u64>,
    ) -> (SinkReport, Option<String>) {
        let s = self.snapshot();
        let lagging = s.enabled && oldest_age_secs.is_some_and(|a| a > s.lag_alert_secs);
        let problem = if !s.enabled {
            None
        } else if lagging {
            Some(format!(
                "Supabase sink lagging: {pending} change(s) unsent, the oldest {} s old (alert at {} s){}",
                oldest_age_secs.unwrap_or(0),
                s.lag_alert_secs,
                s.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ))
        } else if !s.connected {
            Some(match &s.last_error {
                Some(e) => format!("Supabase sink not connected: {e}"),
                None => "Supabase sink not connected yet".to_owned(),
            })
        } else {
            None
        };
        let report = SinkReport {
            enabled: s.enabled,
            connected: s.connected,
            target: s.target,
            last_error: s.last_error,
            errors_total: s.errors_total,
            delivered_total: s.delivered_total,
            pending,
            oldest_age_secs,
            lag_alert_secs: s.lag_alert_secs,
            lagging,
        };
        (report, problem)
    }

    fn update(&self, f: impl FnOnce(&mut SinkStatus)) {
        f(&mut self.0.lock().expect("sink status lock"));
    }
}

/// The sink's settings from the configuration, reading the connection string's file;
/// `None` when no SNAKKAZ_PAY_SUPABASE_DB_URL_FILE is set (the sink is off).
pub fn settings(cfg: &crate::config::Config) -> Result<Option<SinkSettings>, SinkError> {
    let Some(url_file) = &cfg.supabase_db_url_file else {
        return Ok(None);
    };
    Ok(Some(SinkSettings {
        url: read_url_file(url_file)?,
        manage_schema: cfg.supabase_manage_schema,
        ca_file: cfg.supabase_ca_file.clone(),
        lag_alert: cfg.sink_lag_alert,
    }))
}

/// Largest connection-string file accepted.
const MAX_URL_FILE_BYTES: u64 = 4096;

/// Reads the connection string from its file (first non-empty line, trimmed), refusing a
/// file that others may read: it holds the database password.
pub fn read_url_file(path: &std::path::Path) -> Result<Secret, SinkError> {
    use std::io::Read as _;
    let err = |detail: String| SinkError::Url {
        detail: format!("{}: {detail}", path.display()),
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot read: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(err(format!(
                "mode {mode:04o} lets others read the password; run `chmod 600` (or 640 for a service group)"
            )));
        }
    }
    if meta.len() > MAX_URL_FILE_BYTES {
        return Err(err(format!("larger than {MAX_URL_FILE_BYTES} bytes")));
    }
    // Sized up front so that no reallocation leaves an unzeroized copy behind.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(MAX_URL_FILE_BYTES as usize + 1));
    file.take(MAX_URL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| err("not UTF-8 text".into()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| err("is empty".into()))?;
    Ok(Secret::new(line.to_owned()))
}

/// Parses the settings and starts the supervised sink task; it stops when `cancel` fires.
/// A bad connection string or CA file fails here, at start-up.
pub fn spawn(
    store: Store,
    settings: SinkSettings,
    status: SharedStatus,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, SinkError> {
    let target = Arc::new(Target::new(&settings.url, settings.ca_file.as_deref())?);
    status.update(|s| {
        s.enabled = true;
        s.target = Some(target.label().to_owned());
        s.lag_alert_secs = settings.lag_alert.as_secs();
    });
    tracing::info!(target = %target.label(), "Supabase sink enabled");
    Ok(tokio::spawn(supervise(
        store,
        target,
        settings.manage_schema,
        status,
        cancel,
    )))
}

/// Restarts the drain loop if it panics, so a bug costs a retry, not the mirror.
async fn supervise(
    store: Store,
    target: Arc<Target>,
    manage_schema: bool,
    status: SharedStatus,
    cancel: CancellationToken,
) {
    loop {
        let drain = drain::Drain {
            store: store.clone(),
            target: target.clone(),
            manage_schema,
            status: status.clone(),
            cancel: cancel.clone(),
            last_wallet: std::sync::Mutex::new(None),
            last_receipts: std::sync::Mutex::new(None),
        };
        match tokio::spawn(drain.run()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "Supabase sink task failed; restarting it");
                status.update(|s| {
                    s.connected = false;
                    s.errors_total += 1;
                    s.last_error = Some("internal error: the sink task stopped; restarted".into());
                    s.last_error_at = Some(crate::clock::now());
                });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// The write that re-queues every payment for the sink (`snakkaz-pay sink resync`).
pub fn resync_batch(how: &str) -> WriteBatch {
    WriteBatch {
        requeue_all: true,
        audit: vec![AuditEntry {
            at: crate::clock::now(),
            action: "sink.resync".into(),
            detail: format!("every payment re-queued for the Supabase sink ({how})"),
            source: how.to_owned(),
        }],
        ..Default::default()
    }
}
