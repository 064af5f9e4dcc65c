//! Configuration: a TOML file overridden by the environment, validated once into [`Config`].
//!
//! TOML keys are the environment names lowercased, without the `SNAKKAZ_PAY_` prefix
//! (`ELECTRUM_PORT` → `electrum_port`, `SNAKKAZ_PAY_LISTEN` → `listen`). An empty environment
//! variable counts as unset, as in the env files of the operational guide. Environment
//! variables with the `SNAKKAZ_PAY_` prefix that are not listed in [`keys::ALL`] are ignored
//! (test harnesses and later components use the prefix too); unknown TOML keys are errors.

mod backup;
mod client;
mod descriptor;
mod error;
mod render;
mod source;
pub mod spend;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bdk_wallet::bitcoin::Network;

pub use backup::BackupConfig;
pub use client::ClientConfig;
pub use descriptor::DescriptorProblem;
pub use error::{ConfigError, Origin};

use crate::payments::Policy;
use crate::secret::Secret;
pub use source::Flag;
use source::{Layers, Raw};

/// Configuration file read when none is given on the command line (may be absent).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/snakkaz-pay/config.toml";
/// Track payments through Electrum unless switched off.
pub const DEFAULT_ENABLED: bool = true;
/// Electrum port for plain TCP.
pub const DEFAULT_TCP_PORT: u16 = 50001;
/// Electrum port for TLS.
pub const DEFAULT_TLS_PORT: u16 = 50002;
/// Electrum transport when `ELECTRUM_PROTOCOL` is unset: TLS.
pub const DEFAULT_TLS: bool = true;
/// The appliance's redb database (wallet and all state).
pub const DEFAULT_DB_PATH: &str = "/var/lib/snakkaz-pay/snakkaz-pay.redb";
/// Depth at which a fully paid payment is confirmed.
pub const DEFAULT_MIN_CONFIRMATIONS: u32 = 1;
/// Allowed `ELECTRUM_MIN_CONFIRMATIONS`.
pub const MIN_CONFIRMATIONS_RANGE: (u64, u64) = (1, 100);
/// Safety-net poll interval in milliseconds (subscriptions are the detection path).
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 30_000;
/// Allowed `ELECTRUM_CHECK_INTERVAL`, in milliseconds (1 s to 1 day).
pub const CHECK_INTERVAL_RANGE_MS: (u64, u64) = (1_000, 86_400_000);
/// Bitcoin network when `SNAKKAZ_PAY_NETWORK` is unset.
pub const DEFAULT_NETWORK: Network = Network::Bitcoin;
/// HTTP listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Seconds until an unpaid payment expires.
pub const DEFAULT_PAYMENT_EXPIRY_SECS: u64 = 3_600;
/// Allowed `SNAKKAZ_PAY_PAYMENT_EXPIRY_SECS` (1 minute to 30 days).
pub const PAYMENT_EXPIRY_RANGE_SECS: (u64, u64) = (60, 30 * 86_400);
/// Seconds after expiry during which an address is still watched for late payments.
pub const DEFAULT_LATE_PAYMENT_WINDOW_SECS: u64 = 7 * 86_400;
/// Allowed `SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS` (0 = stop watching at expiry, up to 90 days).
pub const LATE_PAYMENT_WINDOW_RANGE_SECS: (u64, u64) = (0, 90 * 86_400);
/// Seconds one Electrum call may take.
pub const DEFAULT_ELECTRUM_TIMEOUT_SECS: u64 = 20;
/// Allowed `SNAKKAZ_PAY_ELECTRUM_TIMEOUT_SECS`.
pub const ELECTRUM_TIMEOUT_RANGE_SECS: (u64, u64) = (1, 300);
/// Session cost the chain engine lets background work (catch-up, safety net) reach, in
/// ElectrumX cost units: under ElectrumX's default soft limit (1,000), so detection
/// requests are never throttled by our own catch-up. 0: the server has no limits.
pub const DEFAULT_ELECTRUM_COST_BUDGET: u64 = 800;
/// Allowed `SNAKKAZ_PAY_ELECTRUM_COST_BUDGET`.
pub const ELECTRUM_COST_BUDGET_RANGE: (u64, u64) = (0, 10_000_000);
/// Seconds a watched address may wait for its subscription or check before detection is
/// reported degraded (a payment to it could go unnoticed that long).
pub const DEFAULT_DETECTION_BACKLOG_ALERT_SECS: u64 = 60;
/// Allowed `SNAKKAZ_PAY_DETECTION_BACKLOG_ALERT_SECS`.
pub const DETECTION_BACKLOG_ALERT_RANGE_SECS: (u64, u64) = (1, 3_600);
/// Unused addresses in a row after which the first chain scan of a wallet stops: well
/// past the 20 that wallets restore with, since a payment system hands out addresses
/// that are never paid.
pub const DEFAULT_SCAN_STOP_GAP: u64 = 100;
/// Allowed `SNAKKAZ_PAY_SCAN_STOP_GAP` (0: the descriptor was made for this appliance and
/// never used, no scan).
pub const SCAN_STOP_GAP_RANGE: (u64, u64) = (0, 100_000);
/// Manage the Supabase tables' schema unless told not to.
pub const DEFAULT_SUPABASE_MANAGE_SCHEMA: bool = true;
/// `archive` moves only completed payments unless told to move expired and underpaid too.
pub const DEFAULT_ARCHIVE_UNPAID: bool = false;
/// Seconds the oldest undelivered sink row may wait before the status page alerts.
pub const DEFAULT_SINK_LAG_ALERT_SECS: u64 = 300;
/// Allowed `SNAKKAZ_PAY_SINK_LAG_ALERT_SECS` (1 s to 7 days).
pub const SINK_LAG_ALERT_RANGE_SECS: (u64, u64) = (1, 7 * 86_400);
/// Allowed `SNAKKAZ_PAY_ALERT_WINDOW_SECS` (1 minute to 1 day).
pub const ALERT_WINDOW_RANGE_SECS: (u64, u64) = (60, 86_400);
/// Allowed `SNAKKAZ_PAY_ALERT_ELECTRUM_DOWN_SECS` (1 s to 1 day).
pub const ALERT_ELECTRUM_DOWN_RANGE_SECS: (u64, u64) = (1, 86_400);
/// Allowed counts of the alert thresholds (reconnects, failed payments, abnormal transactions).
pub const ALERT_COUNT_RANGE: (u64, u64) = (1, 1_000_000);
/// Allowed percentages of the alert thresholds.
pub const ALERT_PCT_RANGE: (u64, u64) = (1, 1_000);
/// User of the Electrum-compatible JSON-RPC when unset: Electrum's own default `rpcuser`.
pub const DEFAULT_ELECTRUM_RPC_USER: &str = "user";
/// Tracing filter when `SNAKKAZ_PAY_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The environment names: the contract with operators and monitoring.
pub mod keys {
    /// Track payments through Electrum (bool).
    pub const ENABLED: &str = "ENABLE_ELECTRUM_PAYMENTS";
    /// Primary Electrum server host.
    pub const ELECTRUM_HOST: &str = "ELECTRUM_HOST";
    /// Primary Electrum server port.
    pub const ELECTRUM_PORT: &str = "ELECTRUM_PORT";
    /// Primary Electrum server transport (`tcp`|`tls`).
    pub const ELECTRUM_PROTOCOL: &str = "ELECTRUM_PROTOCOL";
    /// The redb database file.
    pub const DB_PATH: &str = "ELECTRUM_WALLET_PATH";
    /// Hot-wallet password; environment only.
    pub const WALLET_PASSWORD: &str = "ELECTRUM_WALLET_PASSWORD";
    /// Depth at which a payment is confirmed.
    pub const MIN_CONFIRMATIONS: &str = "ELECTRUM_MIN_CONFIRMATIONS";
    /// Safety-net poll interval (ms).
    pub const CHECK_INTERVAL: &str = "ELECTRUM_CHECK_INTERVAL";
    /// Bitcoin network.
    pub const NETWORK: &str = "SNAKKAZ_PAY_NETWORK";
    /// Receive output descriptor (public keys).
    pub const DESCRIPTOR: &str = "SNAKKAZ_PAY_DESCRIPTOR";
    /// Change output descriptor (public keys).
    pub const CHANGE_DESCRIPTOR: &str = "SNAKKAZ_PAY_CHANGE_DESCRIPTOR";
    /// HTTP listen address.
    pub const LISTEN: &str = "SNAKKAZ_PAY_LISTEN";
    /// File holding the API bearer token.
    pub const API_TOKEN_FILE: &str = "SNAKKAZ_PAY_API_TOKEN_FILE";
    /// File holding the admin bearer token.
    pub const ADMIN_TOKEN_FILE: &str = "SNAKKAZ_PAY_ADMIN_TOKEN_FILE";
    /// Extra failover Electrum servers.
    pub const ELECTRUM_SERVERS: &str = "SNAKKAZ_PAY_ELECTRUM_SERVERS";
    /// PEM trust anchors for a private Electrum server.
    pub const ELECTRUM_CA_FILE: &str = "SNAKKAZ_PAY_ELECTRUM_CA_FILE";
    /// Whether the status page needs a token (`token`|`none`).
    pub const PAGE_AUTH: &str = "SNAKKAZ_PAY_PAGE_AUTH";
    /// Default payment expiry (s).
    pub const PAYMENT_EXPIRY_SECS: &str = "SNAKKAZ_PAY_PAYMENT_EXPIRY_SECS";
    /// How long after expiry an address stays watched (s).
    pub const LATE_PAYMENT_WINDOW_SECS: &str = "SNAKKAZ_PAY_LATE_PAYMENT_WINDOW_SECS";
    /// Depth at which confirmed payments complete on their own.
    pub const AUTO_COMPLETE_DEPTH: &str = "SNAKKAZ_PAY_AUTO_COMPLETE_DEPTH";
    /// Timeout of one Electrum call (s).
    pub const ELECTRUM_TIMEOUT_SECS: &str = "SNAKKAZ_PAY_ELECTRUM_TIMEOUT_SECS";
    /// Session cost (ElectrumX units) background Electrum work may reach; 0 = unlimited.
    pub const ELECTRUM_COST_BUDGET: &str = "SNAKKAZ_PAY_ELECTRUM_COST_BUDGET";
    /// `true` lets a mainnet appliance use plain `tcp://` to a server off this box, whose
    /// answers anyone on the path can rewrite.
    pub const ACCEPT_UNAUTHENTICATED_SERVER: &str = "SNAKKAZ_PAY_ACCEPT_UNAUTHENTICATED_SERVER";
    /// Age (s) of the detection backlog that makes the appliance report itself degraded.
    pub const DETECTION_BACKLOG_ALERT_SECS: &str = "SNAKKAZ_PAY_DETECTION_BACKLOG_ALERT_SECS";
    /// Unused addresses in a row that end the first chain scan.
    pub const SCAN_STOP_GAP: &str = "SNAKKAZ_PAY_SCAN_STOP_GAP";
    /// Tracing filter.
    pub const LOG: &str = "SNAKKAZ_PAY_LOG";
    /// File holding the Supabase Postgres connection string; unset: the sink is off.
    pub const SUPABASE_DB_URL_FILE: &str = "SNAKKAZ_PAY_SUPABASE_DB_URL_FILE";
    /// Whether the sink creates and migrates its tables (bool).
    pub const SUPABASE_MANAGE_SCHEMA: &str = "SNAKKAZ_PAY_SUPABASE_MANAGE_SCHEMA";
    /// PEM trust anchors for the Supabase Postgres server.
    pub const SUPABASE_CA_FILE: &str = "SNAKKAZ_PAY_SUPABASE_CA_FILE";
    /// `archive` also moves expired and underpaid payments (bool).
    pub const ARCHIVE_UNPAID: &str = "SNAKKAZ_PAY_ARCHIVE_UNPAID";
    /// Sink lag (s) after which the status page alerts.
    pub const SINK_LAG_ALERT_SECS: &str = "SNAKKAZ_PAY_SINK_LAG_ALERT_SECS";
    /// Window of the rate alerts (s).
    pub const ALERT_WINDOW_SECS: &str = "SNAKKAZ_PAY_ALERT_WINDOW_SECS";
    /// Electrum disconnected this long raises the connection alert (s).
    pub const ALERT_ELECTRUM_DOWN_SECS: &str = "SNAKKAZ_PAY_ALERT_ELECTRUM_DOWN_SECS";
    /// More Electrum reconnections than this within the window raise the connection alert.
    pub const ALERT_ELECTRUM_RECONNECTS: &str = "SNAKKAZ_PAY_ALERT_ELECTRUM_RECONNECTS";
    /// Wallet balance change (percent) within the window that raises an alert.
    pub const ALERT_BALANCE_CHANGE_PCT: &str = "SNAKKAZ_PAY_ALERT_BALANCE_CHANGE_PCT";
    /// Share (percent) of failed among finished payments within the window that alerts.
    pub const ALERT_FAILED_PAYMENTS_PCT: &str = "SNAKKAZ_PAY_ALERT_FAILED_PAYMENTS_PCT";
    /// Failed payments within the window needed before their share counts.
    pub const ALERT_FAILED_PAYMENTS_MIN: &str = "SNAKKAZ_PAY_ALERT_FAILED_PAYMENTS_MIN";
    /// Newly flagged payments within the window that raise the abnormal-transactions alert.
    pub const ALERT_ABNORMAL_TRANSACTIONS: &str = "SNAKKAZ_PAY_ALERT_ABNORMAL_TRANSACTIONS";
    /// Host names the page and API answer to besides the listen address and loopback.
    pub const ALLOWED_HOSTS: &str = "SNAKKAZ_PAY_ALLOWED_HOSTS";
    /// PEM file with the HTTPS certificate chain and its private key; unset: plain HTTP.
    pub const TLS_CERT_FILE: &str = "SNAKKAZ_PAY_TLS_CERT_FILE";

    /// Directory of the encrypted backups.
    pub const BACKUP_DIR: &str = "SNAKKAZ_PAY_BACKUP_DIR";
    /// age public keys the backups are encrypted to.
    pub const BACKUP_RECIPIENTS: &str = "SNAKKAZ_PAY_BACKUP_RECIPIENTS";
    /// File holding a backup passphrase (instead of recipients).
    pub const BACKUP_PASSPHRASE_FILE: &str = "SNAKKAZ_PAY_BACKUP_PASSPHRASE_FILE";
    /// age identity file for verify-backup and restore.
    pub const BACKUP_IDENTITY_FILE: &str = "SNAKKAZ_PAY_BACKUP_IDENTITY_FILE";
    /// Daily backups kept.
    pub const BACKUP_KEEP_DAILY: &str = "SNAKKAZ_PAY_BACKUP_KEEP_DAILY";
    /// Weekly backups kept.
    pub const BACKUP_KEEP_WEEKLY: &str = "SNAKKAZ_PAY_BACKUP_KEEP_WEEKLY";
    /// rclone remote path for off-site copies.
    pub const BACKUP_REMOTE: &str = "SNAKKAZ_PAY_BACKUP_REMOTE";
    /// rclone configuration file.
    pub const BACKUP_RCLONE_CONFIG: &str = "SNAKKAZ_PAY_BACKUP_RCLONE_CONFIG";
    /// Age (s) after which the last backup verification alerts.
    pub const BACKUP_VERIFY_MAX_AGE_SECS: &str = "SNAKKAZ_PAY_BACKUP_VERIFY_MAX_AGE_SECS";
    /// Addresses skipped ahead after a restore.
    pub const RESTORE_SKIP_AHEAD: &str = "SNAKKAZ_PAY_RESTORE_SKIP_AHEAD";
    /// Electrum-compatible JSON-RPC listen address (loopback); unset: off.
    pub const ELECTRUM_RPC_LISTEN: &str = "SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN";
    /// User name of the Electrum-compatible JSON-RPC (HTTP Basic auth).
    pub const ELECTRUM_RPC_USER: &str = "SNAKKAZ_PAY_ELECTRUM_RPC_USER";
    /// File holding the Electrum-compatible JSON-RPC password.
    pub const ELECTRUM_RPC_PASSWORD_FILE: &str = "SNAKKAZ_PAY_ELECTRUM_RPC_PASSWORD_FILE";
    /// Cold-storage destination of transfers: addresses or a public descriptor.
    pub const COLD_STORAGE: &str = "SNAKKAZ_PAY_COLD_STORAGE";
    /// File holding the TOTP secret that confirms broadcasts (mode 0600).
    pub const TOTP_SECRET_FILE: &str = "SNAKKAZ_PAY_TOTP_SECRET_FILE";
    /// Hot mode: the encrypted seed file (age, passphrase); unset: watch-only.
    pub const HOT_SEED_FILE: &str = "SNAKKAZ_PAY_HOT_SEED_FILE";
    /// Hot mode: a file holding the seed file's password (else the systemd credential, else
    /// ELECTRUM_WALLET_PASSWORD).
    pub const HOT_PASSWORD_FILE: &str = "SNAKKAZ_PAY_HOT_PASSWORD_FILE";

    /// Every environment name, in the order of the generated config file.
    pub const ALL: [&str; 57] = [
        ENABLED,
        ELECTRUM_HOST,
        ELECTRUM_PORT,
        ELECTRUM_PROTOCOL,
        DB_PATH,
        WALLET_PASSWORD,
        MIN_CONFIRMATIONS,
        CHECK_INTERVAL,
        NETWORK,
        DESCRIPTOR,
        CHANGE_DESCRIPTOR,
        LISTEN,
        API_TOKEN_FILE,
        ADMIN_TOKEN_FILE,
        ELECTRUM_SERVERS,
        ELECTRUM_CA_FILE,
        PAGE_AUTH,
        PAYMENT_EXPIRY_SECS,
        LATE_PAYMENT_WINDOW_SECS,
        AUTO_COMPLETE_DEPTH,
        ELECTRUM_TIMEOUT_SECS,
        ELECTRUM_COST_BUDGET,
        ACCEPT_UNAUTHENTICATED_SERVER,
        DETECTION_BACKLOG_ALERT_SECS,
        SCAN_STOP_GAP,
        LOG,
        SUPABASE_DB_URL_FILE,
        SUPABASE_MANAGE_SCHEMA,
        SUPABASE_CA_FILE,
        ARCHIVE_UNPAID,
        SINK_LAG_ALERT_SECS,
        ALERT_WINDOW_SECS,
        ALERT_ELECTRUM_DOWN_SECS,
        ALERT_ELECTRUM_RECONNECTS,
        ALERT_BALANCE_CHANGE_PCT,
        ALERT_FAILED_PAYMENTS_PCT,
        ALERT_FAILED_PAYMENTS_MIN,
        ALERT_ABNORMAL_TRANSACTIONS,
        ALLOWED_HOSTS,
        TLS_CERT_FILE,
        BACKUP_DIR,
        BACKUP_RECIPIENTS,
        BACKUP_PASSPHRASE_FILE,
        BACKUP_IDENTITY_FILE,
        BACKUP_KEEP_DAILY,
        BACKUP_KEEP_WEEKLY,
        BACKUP_REMOTE,
        BACKUP_RCLONE_CONFIG,
        BACKUP_VERIFY_MAX_AGE_SECS,
        RESTORE_SKIP_AHEAD,
        ELECTRUM_RPC_LISTEN,
        ELECTRUM_RPC_USER,
        ELECTRUM_RPC_PASSWORD_FILE,
        COLD_STORAGE,
        TOTP_SECRET_FILE,
        HOT_SEED_FILE,
        HOT_PASSWORD_FILE,
    ];

    /// Keys that hold secrets and are refused in the config file.
    pub const ENV_ONLY: [&str; 1] = [WALLET_PASSWORD];

    /// The TOML key of an environment name: lowercased, without the `SNAKKAZ_PAY_` prefix.
    pub fn toml_key(env: &str) -> String {
        env.strip_prefix("SNAKKAZ_PAY_")
            .unwrap_or(env)
            .to_ascii_lowercase()
    }
}

/// The validated configuration of the appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Track payments through Electrum (`ENABLE_ELECTRUM_PAYMENTS`).
    pub enabled: bool,
    /// Bitcoin network of the descriptors and the Electrum servers.
    pub network: Network,
    /// Receive descriptor, public keys only, with checksum.
    pub descriptor: String,
    /// Change descriptor, public keys only, with checksum.
    pub change_descriptor: Option<String>,
    /// Electrum servers in failover order: the primary first; empty only when disabled.
    pub servers: Vec<ElectrumServer>,
    /// PEM trust anchors for TLS servers instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Safety-net poll interval.
    pub check_interval: Duration,
    /// Timeout of one Electrum call.
    pub electrum_timeout: Duration,
    /// Session cost background Electrum work may reach (ElectrumX units); 0 = unlimited.
    pub electrum_cost_budget: u64,
    /// The operator accepts plain TCP to a remote server on mainnet.
    pub accept_unauthenticated_server: bool,
    /// Age of the detection backlog at which detection is reported degraded.
    pub detection_backlog_alert: Duration,
    /// Unused addresses in a row that end the first chain scan.
    pub scan_stop_gap: u32,
    /// Depth at which a fully paid payment is confirmed.
    pub min_confirmations: u32,
    /// The redb database file.
    pub db_path: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// File holding the API bearer token.
    pub api_token_file: Option<PathBuf>,
    /// File holding the admin bearer token.
    pub admin_token_file: Option<PathBuf>,
    /// Whether the status page needs a token.
    pub page_auth: PageAuth,
    /// Default lifetime of a new payment.
    pub payment_expiry: Duration,
    /// How long after expiry an address is still watched.
    pub late_payment_window: Duration,
    /// Depth at which confirmed payments complete on their own.
    pub auto_complete_depth: Option<u32>,
    /// Hot-wallet password (environment only; reserved).
    pub wallet_password: Option<Secret>,
    /// Tracing filter directive.
    pub log_filter: String,
    /// File holding the Supabase connection string; `None`: the sink is off.
    pub supabase_db_url_file: Option<PathBuf>,
    /// Whether the sink creates and migrates its tables.
    pub supabase_manage_schema: bool,
    /// PEM trust anchors for the Supabase Postgres server.
    pub supabase_ca_file: Option<PathBuf>,
    /// `archive` also moves expired and underpaid payments.
    pub archive_unpaid: bool,
    /// Sink lag after which the status page alerts.
    pub sink_lag_alert: Duration,
    /// Thresholds of the appliance's own alert evaluation.
    pub alerts: crate::alerts::Thresholds,
    /// Extra `Host` names accepted by the web server (lowercase; DNS-rebinding defence).
    pub allowed_hosts: Vec<String>,
    /// PEM file with the HTTPS certificate chain and key; `None`: plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// Backups, verification, off-site copy and restore.
    pub backup: BackupConfig,
    /// The Electrum-compatible JSON-RPC endpoint; `None`: off.
    pub electrum_rpc: Option<ElectrumRpc>,
    /// Where transfers may go (`None`: transfers are refused).
    pub cold_storage: Option<spend::ColdStorage>,
    /// The TOTP secret confirming every broadcast.
    pub totp_secret_file: PathBuf,
    /// Hot mode (`None`: watch-only, the default).
    pub hot: Option<spend::HotMode>,
}

/// Settings of the Electrum-compatible JSON-RPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectrumRpc {
    /// Loopback address to listen on.
    pub listen: SocketAddr,
    /// HTTP Basic user name.
    pub user: String,
    /// File holding the password (mode 0600).
    pub password_file: PathBuf,
}

/// One Electrum server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElectrumServer {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS (`ssl://`) rather than plain TCP.
    pub tls: bool,
}

impl fmt::Display for ElectrumServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "ssl" } else { "tcp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Whether the status page asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAuth {
    /// A bearer token (the API or admin token) is required.
    Token,
    /// The page is open to anyone who can reach the listen address.
    None,
}

impl PageAuth {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PageAuth::Token => "token",
            PageAuth::None => "none",
        }
    }
}

impl Config {
    /// Load `file` (default path when `None`; may then be absent), overridden by `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let layers = Layers::new(file, env)?;
        build(&layers)
    }

    /// [`Config::load`] with command-line flags above the environment (errors name the flag).
    pub fn load_with_flags(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        flags: &[Flag],
    ) -> Result<Config, ConfigError> {
        let layers = Layers::new(file, env)?.with_flags(flags);
        build(&layers)
    }

    /// [`Config::load`] with the process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut env = HashMap::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !keys::ALL.contains(&name) {
                continue;
            }
            let value = value.into_string().map_err(|_| ConfigError::NotUnicode {
                name: name.to_owned(),
            })?;
            env.insert(name.to_owned(), value);
        }
        let config = Config::load(file, &env);
        // The copy may hold ELECTRUM_WALLET_PASSWORD; the Config keeps its own zeroizing one.
        env.values_mut().for_each(zeroize::Zeroize::zeroize);
        config
    }

    /// The lifecycle settings.
    pub fn policy(&self) -> Policy {
        Policy {
            min_confirmations: self.min_confirmations,
            auto_complete_depth: self.auto_complete_depth,
        }
    }

    /// A commented config file for `init` that loads back to this configuration (minus the password).
    pub fn to_toml(&self) -> String {
        render::to_toml(self)
    }
}

/// Validate every key and the rules between them.
fn build(layers: &Layers<'_>) -> Result<Config, ConfigError> {
    let enabled = layers
        .parse(keys::ENABLED, parse_bool)?
        .unwrap_or(DEFAULT_ENABLED);
    let network = layers
        .parse(keys::NETWORK, parse_network)?
        .unwrap_or(DEFAULT_NETWORK);

    let descriptor_raw = layers.get(keys::DESCRIPTOR)?.ok_or(ConfigError::Missing {
        key: keys::DESCRIPTOR,
        hint: "the receive descriptor of the wallet, public keys only (xpub/tpub)",
    })?;
    let change_raw = layers.get(keys::CHANGE_DESCRIPTOR)?;
    let (descriptor, change_descriptor) =
        descriptor::validate_pair(&descriptor_raw, change_raw.as_ref(), network)?;

    let servers = servers(layers, enabled)?;
    let accept_unauthenticated_server = layers
        .parse(keys::ACCEPT_UNAUTHENTICATED_SERVER, parse_bool)?
        .unwrap_or(false);
    if network == Network::Bitcoin
        && !accept_unauthenticated_server
        && let Some(s) = servers
            .iter()
            .find(|s| !s.tls && !is_loopback_host(&s.host))
    {
        let problem = format!(
            "{s} is plain tcp:// to another host on mainnet: anyone on the path can rewrite what the server says; use tls (ssl://), a server on this box, or set {}=true to accept it",
            keys::ACCEPT_UNAUTHENTICATED_SERVER
        );
        // Name the key the server came from: the primary's protocol, or the list.
        let from_list = layers
            .get(keys::ELECTRUM_HOST)?
            .is_none_or(|h| h.text.trim() != s.host);
        let key = if from_list {
            keys::ELECTRUM_SERVERS
        } else {
            keys::ELECTRUM_PROTOCOL
        };
        return Err(match layers.get(key)? {
            Some(raw) => raw.invalid(problem),
            None => ConfigError::Invalid {
                origin: Origin::Env(key),
                problem,
            },
        });
    }
    let min_confirmations = layers
        .parse(keys::MIN_CONFIRMATIONS, |r| {
            parse_in(r, MIN_CONFIRMATIONS_RANGE, "")
        })?
        .map_or(DEFAULT_MIN_CONFIRMATIONS, to_u32);
    let check_interval_ms = layers
        .parse(keys::CHECK_INTERVAL, |r| {
            parse_in(r, CHECK_INTERVAL_RANGE_MS, " ms")
        })?
        .unwrap_or(DEFAULT_CHECK_INTERVAL_MS);
    let electrum_timeout = layers
        .parse(keys::ELECTRUM_TIMEOUT_SECS, |r| {
            parse_in(r, ELECTRUM_TIMEOUT_RANGE_SECS, " s")
        })?
        .unwrap_or(DEFAULT_ELECTRUM_TIMEOUT_SECS);
    let electrum_cost_budget = layers
        .parse(keys::ELECTRUM_COST_BUDGET, |r| {
            parse_in(r, ELECTRUM_COST_BUDGET_RANGE, "")
        })?
        .unwrap_or(DEFAULT_ELECTRUM_COST_BUDGET);
    let detection_backlog_alert = layers
        .parse(keys::DETECTION_BACKLOG_ALERT_SECS, |r| {
            parse_in(r, DETECTION_BACKLOG_ALERT_RANGE_SECS, " s")
        })?
        .unwrap_or(DEFAULT_DETECTION_BACKLOG_ALERT_SECS);
    let scan_stop_gap = layers
        .parse(keys::SCAN_STOP_GAP, |r| {
            parse_in(r, SCAN_STOP_GAP_RANGE, "")
        })?
        .map_or(DEFAULT_SCAN_STOP_GAP as u32, to_u32);
    let payment_expiry = layers
        .parse(keys::PAYMENT_EXPIRY_SECS, |r| {
            parse_in(r, PAYMENT_EXPIRY_RANGE_SECS, " s")
        })?
        .unwrap_or(DEFAULT_PAYMENT_EXPIRY_SECS);
    let late_payment_window = layers
        .parse(keys::LATE_PAYMENT_WINDOW_SECS, |r| {
            parse_in(r, LATE_PAYMENT_WINDOW_RANGE_SECS, " s")
        })?
        .unwrap_or(DEFAULT_LATE_PAYMENT_WINDOW_SECS);

    let auto_complete_depth = match layers.get(keys::AUTO_COMPLETE_DEPTH)? {
        None => None,
        Some(raw) => {
            let depth = to_u32(parse_in(&raw, (0, u64::from(u32::MAX)), "")?);
            if depth < min_confirmations {
                return Err(raw.invalid(format!(
                    "{depth} is below {} ({min_confirmations}); payments must be confirmed before they complete",
                    keys::MIN_CONFIRMATIONS
                )));
            }
            Some(depth)
        }
    };

    let listen = match layers.parse(keys::LISTEN, parse_socket_addr)? {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .expect("DEFAULT_LISTEN is a socket address"),
    };
    let api_token_file = layers.parse(keys::API_TOKEN_FILE, parse_path)?;
    let admin_token_file = layers.parse(keys::ADMIN_TOKEN_FILE, parse_path)?;
    let page_auth = page_auth(
        layers,
        listen,
        api_token_file.is_some() || admin_token_file.is_some(),
    )?;

    let log_filter = match layers.get(keys::LOG)? {
        None => DEFAULT_LOG_FILTER.to_owned(),
        Some(raw) => {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.text) {
                return Err(raw.invalid(format!("{:?} is not a tracing filter: {e}", raw.text)));
            }
            raw.text
        }
    };

    let db_path = layers
        .parse(keys::DB_PATH, parse_path)?
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH));
    let alerts = alert_thresholds(layers)?;
    let allowed_hosts = allowed_hosts(layers)?;

    Ok(Config {
        enabled,
        network,
        descriptor,
        change_descriptor,
        servers,
        ca_file: layers.parse(keys::ELECTRUM_CA_FILE, parse_path)?,
        check_interval: Duration::from_millis(check_interval_ms),
        electrum_timeout: Duration::from_secs(electrum_timeout),
        electrum_cost_budget,
        accept_unauthenticated_server,
        detection_backlog_alert: Duration::from_secs(detection_backlog_alert),
        scan_stop_gap,
        min_confirmations,
        db_path: db_path.clone(),
        listen,
        api_token_file,
        admin_token_file,
        page_auth,
        payment_expiry: Duration::from_secs(payment_expiry),
        late_payment_window: Duration::from_secs(late_payment_window),
        auto_complete_depth,
        wallet_password: layers.env_secret(keys::WALLET_PASSWORD),
        log_filter,
        supabase_db_url_file: layers.parse(keys::SUPABASE_DB_URL_FILE, parse_path)?,
        supabase_manage_schema: layers
            .parse(keys::SUPABASE_MANAGE_SCHEMA, parse_bool)?
            .unwrap_or(DEFAULT_SUPABASE_MANAGE_SCHEMA),
        supabase_ca_file: layers.parse(keys::SUPABASE_CA_FILE, parse_path)?,
        archive_unpaid: layers
            .parse(keys::ARCHIVE_UNPAID, parse_bool)?
            .unwrap_or(DEFAULT_ARCHIVE_UNPAID),
        sink_lag_alert: Duration::from_secs(
            layers
                .parse(keys::SINK_LAG_ALERT_SECS, |r| {
                    parse_in(r, SINK_LAG_ALERT_RANGE_SECS, " s")
                })?
                .unwrap_or(DEFAULT_SINK_LAG_ALERT_SECS),
        ),
        alerts,
        allowed_hosts,
        tls_cert_file: layers.parse(keys::TLS_CERT_FILE, parse_path)?,
        backup: backup::build(layers)?,
        electrum_rpc: electrum_rpc(layers)?,
        cold_storage: spend::cold_storage(layers, network)?,
        totp_secret_file: spend::totp_secret_file(layers, &db_path)?,
        hot: spend::hot_mode(layers)?,
    })
}

/// `SNAKKAZ_PAY_ALLOWED_HOSTS`: host names (no scheme, no port), lowercased.
fn allowed_hosts(layers: &Layers<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = layers.get_list(keys::ALLOWED_HOSTS)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.items.len());
    for item in &list.items {
        if item.contains(':') && item.parse::<std::net::IpAddr>().is_err() {
            return Err(list.raw.invalid(format!(
                "{item:?}: give a host name or IP address without scheme or port"
            )));
        }
        check_host(item).map_err(|problem| list.raw.invalid(problem))?;
        let host = item.trim_end_matches('.').to_ascii_lowercase();
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

/// The Electrum-compatible JSON-RPC: off unless a listen address is set; loopback only,
/// since Electrum's protocol is plain HTTP with Basic auth.
fn electrum_rpc(layers: &Layers<'_>) -> Result<Option<ElectrumRpc>, ConfigError> {
    let Some(raw) = layers.get(keys::ELECTRUM_RPC_LISTEN)? else {
        return Ok(None);
    };
    let listen = parse_socket_addr(&raw)?;
    if !listen.ip().is_loopback() {
        return Err(raw.invalid(format!(
            "{listen} is not a loopback address; the Electrum JSON-RPC is plain HTTP with a password, so it listens on 127.0.0.1 or [::1] only (put a TLS proxy in front for other hosts)"
        )));
    }
    let password_file = layers
        .parse(keys::ELECTRUM_RPC_PASSWORD_FILE, parse_path)?
        .ok_or(ConfigError::Missing {
            key: keys::ELECTRUM_RPC_PASSWORD_FILE,
            hint: "a file (mode 0600) with the password the Electrum JSON-RPC clients use (Electrum's rpcpassword), since SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN is set",
        })?;
    let user = layers
        .get(keys::ELECTRUM_RPC_USER)?
        .map_or_else(|| DEFAULT_ELECTRUM_RPC_USER.to_owned(), |r| r.text);
    Ok(Some(ElectrumRpc {
        listen,
        user,
        password_file,
    }))
}

/// The primary server (`ELECTRUM_HOST`/`PORT`/`PROTOCOL`) followed by the failover list.
fn servers(layers: &Layers<'_>, enabled: bool) -> Result<Vec<ElectrumServer>, ConfigError> {
    // Port and protocol are checked even without a host: a typo there is still a typo.
    let tls = layers
        .parse(keys::ELECTRUM_PROTOCOL, parse_protocol)?
        .unwrap_or(DEFAULT_TLS);
    let port = layers.parse(keys::ELECTRUM_PORT, parse_port)?;
    let mut servers = Vec::new();
    if let Some(host) = layers.parse(keys::ELECTRUM_HOST, parse_host)? {
        let default_port = if tls {
            DEFAULT_TLS_PORT
        } else {
            DEFAULT_TCP_PORT
        };
        servers.push(ElectrumServer {
            host,
            port: port.unwrap_or(default_port),
            tls,
        });
    }
    if let Some(list) = layers.get_list(keys::ELECTRUM_SERVERS)? {
        for item in &list.items {
            let server = parse_server_url(item).map_err(|problem| list.raw.invalid(problem))?;
            if !servers.contains(&server) {
                servers.push(server);
            }
        }
    }
    if enabled && servers.is_empty() {
        return Err(ConfigError::Missing {
            key: keys::ELECTRUM_HOST,
            hint: "an Electrum server is needed while ENABLE_ELECTRUM_PAYMENTS is true \
                   (or list servers in SNAKKAZ_PAY_ELECTRUM_SERVERS)",
        });
    }
    Ok(servers)
}

/// Page auth: explicit value, else `none` on loopback and `token` elsewhere.
fn page_auth(
    layers: &Layers<'_>,
    listen: SocketAddr,
    have_token: bool,
) -> Result<PageAuth, ConfigError> {
    let raw = layers.get(keys::PAGE_AUTH)?;
    let mode = match &raw {
        Some(raw) => parse_page_auth(raw)?,
        None => default_page_auth(listen),
    };
    if mode == PageAuth::Token && !have_token {
        let why = if raw.is_some() {
            "token"
        } else {
            "token (the default off loopback)"
        };
        let problem = format!(
            "{why} needs {} or {}; set one, or set page_auth to none explicitly",
            keys::API_TOKEN_FILE,
            keys::ADMIN_TOKEN_FILE
        );
        return Err(match raw {
            Some(raw) => raw.invalid(problem),
            None => ConfigError::Invalid {
                origin: Origin::Env(keys::PAGE_AUTH),
                problem,
            },
        });
    }
    Ok(mode)
}

/// The page is open on loopback (only this box can reach it) and needs a token elsewhere.
fn default_page_auth(listen: SocketAddr) -> PageAuth {
    if listen.ip().is_loopback() {
        PageAuth::None
    } else {
        PageAuth::Token
    }
}

fn to_u32(v: u64) -> u32 {
    // Callers bound `v` by ranges within u32.
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn parse_bool(raw: &Raw) -> Result<bool, ConfigError> {
    match raw.text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(raw.invalid(format!("{:?} is not a boolean (true or false)", raw.text))),
    }
}

fn parse_network(raw: &Raw) -> Result<Network, ConfigError> {
    match raw.text.as_str() {
        // Electrum and most wallets call it mainnet.
        "bitcoin" | "mainnet" => Ok(Network::Bitcoin),
        "testnet" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(raw.invalid(format!(
            "{other:?} is not a network (bitcoin or mainnet, testnet, testnet4, signet or regtest)"
        ))),
    }
}

/// A whole number within `range` (inclusive); `unit` is appended to the bounds in messages.
fn alert_thresholds(layers: &Layers<'_>) -> Result<crate::alerts::Thresholds, ConfigError> {
    let d = crate::alerts::DEFAULT_THRESHOLDS;
    let get = |key, range, unit, default: u64| -> Result<u64, ConfigError> {
        Ok(layers
            .parse(key, |r| parse_in(r, range, unit))?
            .unwrap_or(default))
    };
    Ok(crate::alerts::Thresholds {
        window: Duration::from_secs(get(
            keys::ALERT_WINDOW_SECS,
            ALERT_WINDOW_RANGE_SECS,
            " s",
            d.window.as_secs(),
        )?),
        electrum_down: Duration::from_secs(get(
            keys::ALERT_ELECTRUM_DOWN_SECS,
            ALERT_ELECTRUM_DOWN_RANGE_SECS,
            " s",
            d.electrum_down.as_secs(),
        )?),
        electrum_reconnects: get(
            keys::ALERT_ELECTRUM_RECONNECTS,
            ALERT_COUNT_RANGE,
            "",
            d.electrum_reconnects,
        )?,
        balance_change_pct: get(
            keys::ALERT_BALANCE_CHANGE_PCT,
            ALERT_PCT_RANGE,
            " %",
            d.balance_change_pct,
        )?,
        failed_payments_pct: get(
            keys::ALERT_FAILED_PAYMENTS_PCT,
            (1, 100),
            " %",
            d.failed_payments_pct,
        )?,
        failed_payments_min: get(
            keys::ALERT_FAILED_PAYMENTS_MIN,
            ALERT_COUNT_RANGE,
            "",
            d.failed_payments_min,
        )?,
        abnormal_transactions: get(
            keys::ALERT_ABNORMAL_TRANSACTIONS,
            ALERT_COUNT_RANGE,
            "",
            d.abnormal_transactions,
        )?,
    })
}

fn parse_in(raw: &Raw, (lo, hi): (u64, u64), unit: &str) -> Result<u64, ConfigError> {
    let n: u64 = raw
        .text
        .parse()
        .map_err(|_| raw.invalid(format!("{:?} is not a whole number", raw.text)))?;
    if n < lo || n > hi {
        return Err(raw.invalid(format!("{n} is out of range ({lo} to {hi}{unit})")));
    }
    Ok(n)
}

fn parse_port(raw: &Raw) -> Result<u16, ConfigError> {
    match raw.text.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(raw.invalid(format!("{:?} is not a port number (1-65535)", raw.text))),
    }
}

fn parse_protocol(raw: &Raw) -> Result<bool, ConfigError> {
    match raw.text.to_ascii_lowercase().as_str() {
        "tls" | "ssl" => Ok(true),
        "tcp" => Ok(false),
        _ => Err(raw.invalid(format!("{:?} is not a protocol (tcp or tls)", raw.text))),
    }
}

fn parse_host(raw: &Raw) -> Result<String, ConfigError> {
    check_host(&raw.text).map_err(|problem| raw.invalid(problem))?;
    Ok(raw
        .text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned())
}

/// A host name or IP address; an explanation of what is wrong otherwise.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains("://") {
        return Err(format!(
            "{host:?} is a URL; give only the host name (port and protocol have their own keys)"
        ));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ok = !bare.is_empty()
        && (bare.parse::<std::net::IpAddr>().is_ok()
            || bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("{host:?} is not a host name or IP address"))
    }
}

/// A host name that can only be this box.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `tcp://host:port` or `ssl://host:port` (IPv6 in brackets); the port defaults by scheme.
fn parse_server_url(url: &str) -> Result<ElectrumServer, String> {
    let expected = "expected tcp://host:port or ssl://host:port";
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?}: {expected}"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "ssl" | "tls" => true,
        _ => return Err(format!("{url:?}: unknown scheme {scheme:?}, {expected}")),
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: {expected}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{url:?}: {expected}")),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    check_host(host).map_err(|problem| format!("{url:?}: {problem}"))?;
    let port = match port {
        None => {
            if tls {
                DEFAULT_TLS_PORT
            } else {
                DEFAULT_TCP_PORT
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("{url:?}: {p:?} is not a port number (1-65535)")),
        },
    };
    Ok(ElectrumServer {
        host: host.to_owned(),
        port,
        tls,
    })
}

fn parse_socket_addr(raw: &Raw) -> Result<SocketAddr, ConfigError> {
    raw.text.parse().map_err(|_| {
        raw.invalid(format!(
            "{:?} is not a socket address (IP:port, e.g. 127.0.0.1:8080 or [::1]:8080)",
            raw.text
        ))
    })
}

fn parse_path(raw: &Raw) -> Result<PathBuf, ConfigError> {
    Ok(PathBuf::from(&raw.text))
}

fn parse_page_auth(raw: &Raw) -> Result<PageAuth, ConfigError> {
    match raw.text.to_ascii_lowercase().as_str() {
        "token" => Ok(PageAuth::Token),
        "none" => Ok(PageAuth::None),
        _ => Err(raw.invalid(format!(
            "{:?} is not a page auth mode (token or none)",
            raw.text
        ))),
    }
}
