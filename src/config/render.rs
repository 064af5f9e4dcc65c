//! The commented config file `init` writes. It never contains the wallet password.

use std::path::Path;

use super::descriptor::network_name;
use super::{Config, default_page_auth, keys};

/// Render `config` as a commented TOML file that loads back to the same values.
pub(super) fn to_toml(c: &Config) -> String {
    let mut out = String::new();
    out.push_str(
        "# snakkaz-pay configuration.\n\
         # Every key can be overridden by the environment variable named in its comment.\n\
         # ELECTRUM_WALLET_PASSWORD is never read from this file: set it in the environment.\n",
    );
    let primary = c.servers.first();
    let extra: Vec<String> = c.servers.iter().skip(1).map(ToString::to_string).collect();

    let mut w = Writer(&mut out);
    w.section("Electrum");
    w.value(
        keys::ENABLED,
        "track payments through Electrum",
        Some(c.enabled.to_string()),
        "",
    );
    w.value(
        keys::ELECTRUM_HOST,
        "primary Electrum server (host name or IP address)",
        primary.map(|s| quote(&s.host)),
        "\"electrum.example.org\"",
    );
    w.value(
        keys::ELECTRUM_PORT,
        "its port",
        primary.map(|s| s.port.to_string()),
        "50002",
    );
    w.value(
        keys::ELECTRUM_PROTOCOL,
        "tcp or tls",
        primary.map(|s| quote(if s.tls { "tls" } else { "tcp" })),
        "\"tls\"",
    );
    w.value(
        keys::ELECTRUM_SERVERS,
        "failover servers, tried in order after the primary",
        Some(format!(
            "[{}]",
            extra
                .iter()
                .map(|s| quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "",
    );
    w.value(
        keys::ELECTRUM_CA_FILE,
        "PEM trust anchors for a private TLS server; unset: the system roots",
        c.ca_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/electrum-ca.pem\"",
    );
    w.value(
        keys::CHECK_INTERVAL,
        "safety-net poll in milliseconds; subscriptions notice payments at once",
        Some(c.check_interval.as_millis().to_string()),
        "",
    );
    w.value(
        keys::ELECTRUM_TIMEOUT_SECS,
        "seconds one Electrum call may take",
        Some(c.electrum_timeout.as_secs().to_string()),
        "",
    );
    w.value(
        keys::ELECTRUM_COST_BUDGET,
        "session cost (ElectrumX units) catch-up may use; keep under the server's soft limit; 0 = server unlimited",
        Some(c.electrum_cost_budget.to_string()),
        "",
    );
    w.value(
        keys::ACCEPT_UNAUTHENTICATED_SERVER,
        "true lets mainnet use plain tcp:// to a server off this box (its answers can be rewritten on the way)",
        Some(c.accept_unauthenticated_server.to_string()),
        "",
    );
    w.value(
        keys::SCAN_STOP_GAP,
        "unused addresses in a row that end the first scan for addresses used before; 0 = never used, no scan",
        Some(c.scan_stop_gap.to_string()),
        "",
    );
    w.value(
        keys::DETECTION_BACKLOG_ALERT_SECS,
        "seconds an address may wait for its subscription before health is degraded",
        Some(c.detection_backlog_alert.as_secs().to_string()),
        "",
    );

    w.section("Wallet");
    w.value(
        keys::NETWORK,
        "bitcoin, testnet, testnet4, signet or regtest",
        Some(quote(network_name(c.network))),
        "",
    );
    w.value(
        keys::DESCRIPTOR,
        "receive descriptor, public keys only",
        Some(quote(&c.descriptor)),
        "",
    );
    w.value(
        keys::CHANGE_DESCRIPTOR,
        "change descriptor, public keys only",
        c.change_descriptor.as_deref().map(quote),
        "\"wpkh([fingerprint/84h/0h/0h]xpub.../1/*)\"",
    );
    w.value(
        keys::DB_PATH,
        "the database: wallet and all state in one file",
        Some(quote_path(&c.db_path)),
        "",
    );

    w.section("Payments");
    w.value(
        keys::MIN_CONFIRMATIONS,
        "confirmations before a payment is confirmed (1-100)",
        Some(c.min_confirmations.to_string()),
        "",
    );
    w.value(
        keys::PAYMENT_EXPIRY_SECS,
        "seconds until an unpaid payment expires",
        Some(c.payment_expiry.as_secs().to_string()),
        "",
    );
    w.value(
        keys::LATE_PAYMENT_WINDOW_SECS,
        "seconds after expiry during which late payments are still noticed",
        Some(c.late_payment_window.as_secs().to_string()),
        "",
    );
    w.value(
        keys::AUTO_COMPLETE_DEPTH,
        "complete confirmed payments on their own at this depth; unset: only on request",
        c.auto_complete_depth.map(|d| d.to_string()),
        "6",
    );

    w.section("Web");
    w.value(
        keys::LISTEN,
        "HTTP listen address",
        Some(quote(&c.listen.to_string())),
        "",
    );
    w.value(
        keys::API_TOKEN_FILE,
        "file with the API bearer token (mode 0600)",
        c.api_token_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/api.token\"",
    );
    w.value(
        keys::ADMIN_TOKEN_FILE,
        "file with the admin bearer token (mode 0600)",
        c.admin_token_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/admin.token\"",
    );
    // Written only when it differs from what the listen address implies, so that moving
    // `listen` off loopback later does not silently keep an open page.
    w.value(
        keys::PAGE_AUTH,
        "token or none; unset: none on a loopback address, token otherwise",
        (c.page_auth != default_page_auth(c.listen)).then(|| quote(c.page_auth.as_str())),
        "\"token\"",
    );
    w.value(keys::LOG, "tracing filter", Some(quote(&c.log_filter)), "");
    w.value(
        keys::ALLOWED_HOSTS,
        "host names the page and API answer to besides the listen address, loopback and the box's IP",
        (!c.allowed_hosts.is_empty()).then(|| {
            let items: Vec<String> = c.allowed_hosts.iter().map(|h| quote(h)).collect();
            format!("[{}]", items.join(", "))
        }),
        "[\"pay.example.lan\"]",
    );
    w.value(
        keys::TLS_CERT_FILE,
        "PEM file with the HTTPS certificate chain and its private key (mode 0600); unset: plain HTTP",
        c.tls_cert_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/https.pem\"",
    );

    w.section("Supabase sink (off unless supabase_db_url_file is set)");
    w.value(
        keys::SUPABASE_DB_URL_FILE,
        "file with the Postgres connection string (mode 0600)",
        c.supabase_db_url_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/supabase-db-url\"",
    );
    w.value(
        keys::SUPABASE_MANAGE_SCHEMA,
        "create and migrate the sink's tables",
        Some(c.supabase_manage_schema.to_string()),
        "",
    );
    w.value(
        keys::SUPABASE_CA_FILE,
        "PEM trust anchors for the Postgres server; unset: the system roots",
        c.supabase_ca_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/supabase-ca.pem\"",
    );
    w.value(
        keys::ARCHIVE_UNPAID,
        "`snakkaz-pay archive` also moves expired and underpaid payments",
        Some(c.archive_unpaid.to_string()),
        "",
    );
    w.value(
        keys::SINK_LAG_ALERT_SECS,
        "alert on the status page when the oldest undelivered change is this many seconds old",
        Some(c.sink_lag_alert.as_secs().to_string()),
        "",
    );

    w.section("Electrum-compatible JSON-RPC (off unless electrum_rpc_listen is set)");
    let rpc = c.electrum_rpc.as_ref();
    w.value(
        keys::ELECTRUM_RPC_LISTEN,
        "loopback address for Electrum-daemon clients (Electrum's rpcport)",
        rpc.map(|r| quote(&r.listen.to_string())),
        "\"127.0.0.1:7777\"",
    );
    w.value(
        keys::ELECTRUM_RPC_USER,
        "HTTP Basic user (Electrum's rpcuser)",
        rpc.map(|r| quote(&r.user)),
        "\"user\"",
    );
    w.value(
        keys::ELECTRUM_RPC_PASSWORD_FILE,
        "file with the password (Electrum's rpcpassword), mode 0600",
        rpc.map(|r| quote_path(&r.password_file)),
        "\"/etc/snakkaz-pay/electrum-rpc-password\"",
    );

    w.section("Transfers to cold storage (`snakkaz-pay transfer`, off unless cold_storage is set)");
    w.value(
        keys::COLD_STORAGE,
        "cold-storage addresses (the first is paid) or one public descriptor; never set through the API",
        c.cold_storage.as_ref().map(|cold| {
            let items: Vec<String> = cold
                .addresses
                .iter()
                .map(|a| quote(&a.to_string()))
                .collect();
            format!("[{}]", items.join(", "))
        }),
        "[\"bc1q...\"]",
    );
    let default_totp = c
        .db_path
        .with_file_name(super::spend::DEFAULT_TOTP_SECRET_NAME);
    w.value(
        keys::TOTP_SECRET_FILE,
        "TOTP secret confirming every broadcast (written by `snakkaz-pay totp setup`, mode 0600); unset: totp.secret beside the database",
        (c.totp_secret_file != default_totp).then(|| quote_path(&c.totp_secret_file)),
        "\"/etc/snakkaz-pay/totp.secret\"",
    );

    w.section("Hot mode (off unless hot_seed_file is set): sign transfers to cold storage and CPFP children");
    w.value(
        keys::HOT_SEED_FILE,
        "the encrypted seed (age, passphrase; written by `snakkaz-pay hot import`, mode 0600)",
        c.hot.as_ref().map(|h| quote_path(&h.seed_file)),
        "\"/var/lib/snakkaz-pay/hot-seed.age\"",
    );
    w.value(
        keys::HOT_PASSWORD_FILE,
        "file with the seed file's password, mode 0600; unset: the systemd credential electrum-wallet-password, else ELECTRUM_WALLET_PASSWORD",
        c.hot
            .as_ref()
            .and_then(|h| h.password_file.as_ref())
            .map(|p| quote_path(p)),
        "\"/etc/snakkaz-pay/hot-password\"",
    );

    w.section("Alerts evaluated by the appliance (GET /api/alerts, the status page)");
    let a = &c.alerts;
    for (key, what, value) in [
        (
            keys::ALERT_WINDOW_SECS,
            "window of the rate alerts, seconds",
            a.window.as_secs(),
        ),
        (
            keys::ALERT_ELECTRUM_DOWN_SECS,
            "Electrum disconnected this many seconds alerts",
            a.electrum_down.as_secs(),
        ),
        (
            keys::ALERT_ELECTRUM_RECONNECTS,
            "more Electrum reconnections than this within the window alert",
            a.electrum_reconnects,
        ),
        (
            keys::ALERT_BALANCE_CHANGE_PCT,
            "wallet balance change within the window that alerts, percent",
            a.balance_change_pct,
        ),
        (
            keys::ALERT_FAILED_PAYMENTS_PCT,
            "share of expired/underpaid among finished payments that alerts, percent",
            a.failed_payments_pct,
        ),
        (
            keys::ALERT_FAILED_PAYMENTS_MIN,
            "failed payments within the window needed before their share counts",
            a.failed_payments_min,
        ),
        (
            keys::ALERT_ABNORMAL_TRANSACTIONS,
            "newly overpaid/late/reorged payments within the window that alert",
            a.abnormal_transactions,
        ),
    ] {
        w.value(key, what, Some(value.to_string()), "");
    }

    let b = &c.backup;
    w.section("Backups (`snakkaz-pay backup`, `verify-backup`, `restore`)");
    w.value(
        keys::BACKUP_DIR,
        "directory of the encrypted backups and their manifests",
        Some(quote_path(&b.dir)),
        "",
    );
    w.value(
        keys::BACKUP_RECIPIENTS,
        "age public keys (age1...) the backups are encrypted to; the identity stays off this box",
        (!b.recipients.is_empty()).then(|| {
            format!(
                "[{}]",
                b.recipients
                    .iter()
                    .map(|r| quote(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        "[\"age1...\"]",
    );
    w.value(
        keys::BACKUP_PASSPHRASE_FILE,
        "file holding a passphrase to encrypt with instead of recipients",
        b.passphrase_file.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/backup-passphrase\"",
    );
    w.value(
        keys::BACKUP_IDENTITY_FILE,
        "age identity file for verify-backup and restore (bring it when needed; do not leave it here)",
        b.identity_file.as_deref().map(quote_path),
        "\"/media/usb/snakkaz-pay-backup.key\"",
    );
    w.value(
        keys::BACKUP_KEEP_DAILY,
        "daily backups kept",
        Some(b.keep_daily.to_string()),
        "",
    );
    w.value(
        keys::BACKUP_KEEP_WEEKLY,
        "weekly backups kept",
        Some(b.keep_weekly.to_string()),
        "",
    );
    w.value(
        keys::BACKUP_REMOTE,
        "rclone remote path new backups are copied to",
        b.remote.as_deref().map(quote),
        "\"offsite:snakkaz-pay\"",
    );
    w.value(
        keys::BACKUP_RCLONE_CONFIG,
        "rclone configuration file of that remote",
        b.rclone_config.as_deref().map(quote_path),
        "\"/etc/snakkaz-pay/rclone.conf\"",
    );
    w.value(
        keys::BACKUP_VERIFY_MAX_AGE_SECS,
        "alert when the last backup verification failed or is older than this many seconds",
        Some(b.verify_max_age.as_secs().to_string()),
        "",
    );
    w.value(
        keys::RESTORE_SKIP_AHEAD,
        "after a restore, addresses skipped past the backup's last revealed one",
        Some(b.restore_skip_ahead.to_string()),
        "",
    );
    out
}

struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    fn section(&mut self, title: &str) {
        self.0.push_str(&format!("\n# --- {title} ---\n"));
    }

    /// `# ENV: what` then `key = value`, or `# key = example` when unset.
    fn value(&mut self, env: &str, what: &str, value: Option<String>, example: &str) {
        let key = keys::toml_key(env);
        self.0.push_str(&format!("\n# {env}: {what}\n"));
        match value {
            Some(v) => self.0.push_str(&format!("{key} = {v}\n")),
            None => self.0.push_str(&format!("# {key} = {example}\n")),
        }
    }
}

/// A TOML basic string with escapes.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}
