//! Every key: default, valid value, invalid value message, environment over file.

use super::*;

struct KeyCase {
    key: &'static str,
    show: fn(&Config) -> String,
    /// Shown value with the key unset (or "error: ..." when that is an error).
    default: &'static str,
    env: (&'static str, &'static str),
    /// A TOML literal and its shown value.
    toml: (&'static str, &'static str),
    /// An invalid value and the start of its message.
    invalid: Option<(&'static str, &'static str)>,
}

fn key_cases() -> Vec<KeyCase> {
    vec![
        KeyCase {
            key: keys::ENABLED,
            show: |c| c.enabled.to_string(),
            default: "true",
            env: ("false", "false"),
            toml: ("false", "false"),
            invalid: Some(("maybe", r#""maybe" is not a boolean (true or false)"#)),
        },
        KeyCase {
            key: keys::ELECTRUM_HOST,
            show: server_list,
            default: "error: ELECTRUM_HOST: required: an Electrum server is needed while ENABLE_ELECTRUM_PAYMENTS is true (or list servers in SNAKKAZ_PAY_ELECTRUM_SERVERS)",
            env: ("10.0.0.5", "ssl://10.0.0.5:50002"),
            toml: (r#""electrum.lan""#, "ssl://electrum.lan:50002"),
            invalid: Some((
                "tcp://x:1",
                r#""tcp://x:1" is a URL; give only the host name"#,
            )),
        },
        KeyCase {
            key: keys::ELECTRUM_PORT,
            show: server_list,
            default: "ssl://electrum.example:50002",
            env: ("50010", "ssl://electrum.example:50010"),
            toml: ("50011", "ssl://electrum.example:50011"),
            invalid: Some(("abc", r#""abc" is not a port number (1-65535)"#)),
        },
        KeyCase {
            key: keys::ELECTRUM_PROTOCOL,
            show: server_list,
            default: "ssl://electrum.example:50002",
            env: ("tcp", "tcp://electrum.example:50001"),
            toml: (r#""tls""#, "ssl://electrum.example:50002"),
            invalid: Some(("udp", r#""udp" is not a protocol (tcp or tls)"#)),
        },
        KeyCase {
            key: keys::DB_PATH,
            show: |c| c.db_path.display().to_string(),
            default: "/var/lib/snakkaz-pay/snakkaz-pay.redb",
            env: ("/data/pay.redb", "/data/pay.redb"),
            toml: (r#""/srv/pay.redb""#, "/srv/pay.redb"),
            invalid: None,
        },
        KeyCase {
            key: keys::MIN_CONFIRMATIONS,
            show: |c| c.min_confirmations.to_string(),
            default: "1",
            env: ("6", "6"),
            toml: ("3", "3"),
            invalid: Some(("0", "0 is out of range (1 to 100)")),
        },
        KeyCase {
            key: keys::CHECK_INTERVAL,
            show: |c| c.check_interval.as_millis().to_string(),
            default: "30000",
            env: ("60000", "60000"),
            toml: ("1000", "1000"),
            invalid: Some(("999", "999 is out of range (1000 to 86400000 ms)")),
        },
        KeyCase {
            key: keys::NETWORK,
            show: |c| c.network.to_string(),
            default: "error: SNAKKAZ_PAY_DESCRIPTOR: the descriptor has test-network (tpub) keys but the network is bitcoin; use mainnet (xpub) keys",
            env: ("regtest", "regtest"),
            toml: (r#""testnet4""#, "testnet4"),
            invalid: Some((
                "main",
                r#""main" is not a network (bitcoin or mainnet, testnet, testnet4, signet or regtest)"#,
            )),
        },
        KeyCase {
            key: keys::LISTEN,
            show: |c| c.listen.to_string(),
            default: "127.0.0.1:8080",
            env: ("127.0.0.1:9000", "127.0.0.1:9000"),
            toml: (r#""[::1]:8081""#, "[::1]:8081"),
            invalid: Some((
                "localhost:8080",
                r#""localhost:8080" is not a socket address (IP:port"#,
            )),
        },
        KeyCase {
            key: keys::API_TOKEN_FILE,
            show: |c| format!("{:?}", c.api_token_file),
            default: "None",
            env: ("/etc/a.token", r#"Some("/etc/a.token")"#),
            toml: (r#""/etc/b.token""#, r#"Some("/etc/b.token")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::ADMIN_TOKEN_FILE,
            show: |c| format!("{:?}", c.admin_token_file),
            default: "None",
            env: ("/etc/a.token", r#"Some("/etc/a.token")"#),
            toml: (r#""/etc/b.token""#, r#"Some("/etc/b.token")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::ELECTRUM_SERVERS,
            show: server_list,
            default: "ssl://electrum.example:50002",
            env: (
                "tcp://a:1, ssl://[::1]:2",
                "ssl://electrum.example:50002,tcp://a:1,ssl://[::1]:2",
            ),
            toml: (
                r#"["tcp://c:3", "ssl://d"]"#,
                "ssl://electrum.example:50002,tcp://c:3,ssl://d:50002",
            ),
            invalid: Some((
                "http://x:1",
                r#""http://x:1": unknown scheme "http", expected tcp://host:port or ssl://host:port"#,
            )),
        },
        KeyCase {
            key: keys::ELECTRUM_CA_FILE,
            show: |c| format!("{:?}", c.ca_file),
            default: "None",
            env: ("/etc/ca.pem", r#"Some("/etc/ca.pem")"#),
            toml: (r#""/etc/ca2.pem""#, r#"Some("/etc/ca2.pem")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::PAGE_AUTH,
            show: |c| c.page_auth.as_str().to_owned(),
            default: "none",
            env: ("none", "none"),
            toml: (r#""none""#, "none"),
            invalid: Some((
                "basic",
                r#""basic" is not a page auth mode (token or none)"#,
            )),
        },
        KeyCase {
            key: keys::PAYMENT_EXPIRY_SECS,
            show: |c| c.payment_expiry.as_secs().to_string(),
            default: "3600",
            env: ("60", "60"),
            toml: ("2592000", "2592000"),
            invalid: Some(("59", "59 is out of range (60 to 2592000 s)")),
        },
        KeyCase {
            key: keys::LATE_PAYMENT_WINDOW_SECS,
            show: |c| c.late_payment_window.as_secs().to_string(),
            default: "604800",
            env: ("0", "0"),
            toml: ("86400", "86400"),
            invalid: Some(("7776001", "7776001 is out of range (0 to 7776000 s)")),
        },
        KeyCase {
            key: keys::AUTO_COMPLETE_DEPTH,
            show: |c| format!("{:?}", c.auto_complete_depth),
            default: "None",
            env: ("6", "Some(6)"),
            toml: ("1", "Some(1)"),
            invalid: Some((
                "0",
                "0 is below ELECTRUM_MIN_CONFIRMATIONS (1); payments must be confirmed before they complete",
            )),
        },
        KeyCase {
            key: keys::ELECTRUM_TIMEOUT_SECS,
            show: |c| c.electrum_timeout.as_secs().to_string(),
            default: "20",
            env: ("5", "5"),
            toml: ("300", "300"),
            invalid: Some(("0", "0 is out of range (1 to 300 s)")),
        },
        KeyCase {
            key: keys::ELECTRUM_COST_BUDGET,
            show: |c| c.electrum_cost_budget.to_string(),
            default: "800",
            env: ("0", "0"),
            toml: ("5000", "5000"),
            invalid: Some(("-1", r#""-1" is not a whole number"#)),
        },
        KeyCase {
            key: keys::ACCEPT_UNAUTHENTICATED_SERVER,
            show: |c| c.accept_unauthenticated_server.to_string(),
            default: "false",
            env: ("true", "true"),
            toml: ("true", "true"),
            invalid: Some(("maybe", r#""maybe" is not a boolean (true or false)"#)),
        },
        KeyCase {
            key: keys::SCAN_STOP_GAP,
            show: |c| c.scan_stop_gap.to_string(),
            default: "100",
            env: ("0", "0"),
            toml: ("1000", "1000"),
            invalid: Some(("100001", "100001 is out of range (0 to 100000)")),
        },
        KeyCase {
            key: keys::DETECTION_BACKLOG_ALERT_SECS,
            show: |c| c.detection_backlog_alert.as_secs().to_string(),
            default: "60",
            env: ("5", "5"),
            toml: ("120", "120"),
            invalid: Some(("0", "0 is out of range (1 to 3600 s)")),
        },
        KeyCase {
            key: keys::LOG,
            show: |c| c.log_filter.clone(),
            default: "info",
            env: ("debug", "debug"),
            toml: (r#""warn,snakkaz_pay=debug""#, "warn,snakkaz_pay=debug"),
            invalid: Some((
                "info,snakkaz_pay=loud",
                r#""info,snakkaz_pay=loud" is not a tracing filter: "#,
            )),
        },
        KeyCase {
            key: keys::SUPABASE_DB_URL_FILE,
            show: |c| format!("{:?}", c.supabase_db_url_file),
            default: "None",
            env: ("/etc/db-url", r#"Some("/etc/db-url")"#),
            toml: (r#""/etc/db-url2""#, r#"Some("/etc/db-url2")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::SUPABASE_MANAGE_SCHEMA,
            show: |c| c.supabase_manage_schema.to_string(),
            default: "true",
            env: ("false", "false"),
            toml: ("false", "false"),
            invalid: Some(("nope", r#""nope" is not a boolean (true or false)"#)),
        },
        KeyCase {
            key: keys::ARCHIVE_UNPAID,
            show: |c| c.archive_unpaid.to_string(),
            default: "false",
            env: ("true", "true"),
            toml: ("true", "true"),
            invalid: Some((
                "sometimes",
                r#""sometimes" is not a boolean (true or false)"#,
            )),
        },
        KeyCase {
            key: keys::SUPABASE_CA_FILE,
            show: |c| format!("{:?}", c.supabase_ca_file),
            default: "None",
            env: ("/etc/pg.pem", r#"Some("/etc/pg.pem")"#),
            toml: (r#""/etc/pg2.pem""#, r#"Some("/etc/pg2.pem")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::SINK_LAG_ALERT_SECS,
            show: |c| c.sink_lag_alert.as_secs().to_string(),
            default: "300",
            env: ("60", "60"),
            toml: ("604800", "604800"),
            invalid: Some(("604801", "604801 is out of range (1 to 604800 s)")),
        },
        KeyCase {
            key: keys::ALERT_WINDOW_SECS,
            show: |c| c.alerts.window.as_secs().to_string(),
            default: "3600",
            env: ("600", "600"),
            toml: ("86400", "86400"),
            invalid: Some(("59", "59 is out of range (60 to 86400 s)")),
        },
        KeyCase {
            key: keys::ALERT_ELECTRUM_DOWN_SECS,
            show: |c| c.alerts.electrum_down.as_secs().to_string(),
            default: "60",
            env: ("3", "3"),
            toml: ("300", "300"),
            invalid: Some(("0", "0 is out of range (1 to 86400 s)")),
        },
        KeyCase {
            key: keys::ALERT_ELECTRUM_RECONNECTS,
            show: |c| c.alerts.electrum_reconnects.to_string(),
            default: "5",
            env: ("10", "10"),
            toml: ("1", "1"),
            invalid: Some(("many", r#""many" is not a whole number"#)),
        },
        KeyCase {
            key: keys::ALERT_BALANCE_CHANGE_PCT,
            show: |c| c.alerts.balance_change_pct.to_string(),
            default: "10",
            env: ("20", "20"),
            toml: ("5", "5"),
            invalid: Some(("0", "0 is out of range (1 to 1000 %)")),
        },
        KeyCase {
            key: keys::ALERT_FAILED_PAYMENTS_PCT,
            show: |c| c.alerts.failed_payments_pct.to_string(),
            default: "25",
            env: ("50", "50"),
            toml: ("100", "100"),
            invalid: Some(("101", "101 is out of range (1 to 100 %)")),
        },
        KeyCase {
            key: keys::ALERT_FAILED_PAYMENTS_MIN,
            show: |c| c.alerts.failed_payments_min.to_string(),
            default: "5",
            env: ("2", "2"),
            toml: ("20", "20"),
            invalid: Some(("-1", r#""-1" is not a whole number"#)),
        },
        KeyCase {
            key: keys::ALERT_ABNORMAL_TRANSACTIONS,
            show: |c| c.alerts.abnormal_transactions.to_string(),
            default: "3",
            env: ("1", "1"),
            toml: ("10", "10"),
            invalid: Some(("0", "0 is out of range (1 to 1000000)")),
        },
        KeyCase {
            key: keys::ALLOWED_HOSTS,
            show: |c| c.allowed_hosts.join(","),
            default: "",
            env: ("Pay.LAN, 10.0.0.9", "pay.lan,10.0.0.9"),
            toml: (r#"["pay.example."]"#, "pay.example"),
            invalid: Some((
                "http://pay.lan",
                r#""http://pay.lan": give a host name or IP address without scheme or port"#,
            )),
        },
        KeyCase {
            key: keys::TLS_CERT_FILE,
            show: |c| format!("{:?}", c.tls_cert_file),
            default: "None",
            env: ("/etc/x.pem", r#"Some("/etc/x.pem")"#),
            toml: (r#""/y.pem""#, r#"Some("/y.pem")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::COLD_STORAGE,
            show: |c| {
                c.cold_storage.as_ref().map_or(String::new(), |cold| {
                    cold.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                })
            },
            default: "",
            env: (
                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080, bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs2ns5wu",
                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080,bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs2ns5wu",
            ),
            toml: (
                r#"["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]"#,
                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
            ),
            invalid: Some((
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                r#""bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4": is not an address of the regtest network"#,
            )),
        },
        KeyCase {
            key: keys::TOTP_SECRET_FILE,
            show: |c| c.totp_secret_file.display().to_string(),
            default: "/var/lib/snakkaz-pay/totp.secret",
            env: ("/etc/x/totp", "/etc/x/totp"),
            toml: (r#""/y/totp""#, "/y/totp"),
            invalid: None,
        },
        KeyCase {
            key: keys::HOT_SEED_FILE,
            show: |c| format!("{:?}", c.hot.as_ref().map(|h| &h.seed_file)),
            default: "None",
            env: ("/var/lib/x/seed.age", r#"Some("/var/lib/x/seed.age")"#),
            toml: (r#""/y/seed.age""#, r#"Some("/y/seed.age")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::HOT_PASSWORD_FILE,
            show: |c| format!("{:?}", c.hot.as_ref().map(|h| &h.password_file)),
            // Only with a seed file: alone it is a half-done set-up.
            default: "None",
            env: (
                "/etc/x/pw",
                "error: SNAKKAZ_PAY_HOT_SEED_FILE: required: SNAKKAZ_PAY_HOT_PASSWORD_FILE is set: set the seed file too (hot mode), or remove the password file (watch-only)",
            ),
            toml: (
                r#""/y/pw""#,
                "error: SNAKKAZ_PAY_HOT_SEED_FILE: required: SNAKKAZ_PAY_HOT_PASSWORD_FILE is set: set the seed file too (hot mode), or remove the password file (watch-only)",
            ),
            invalid: None,
        },
        KeyCase {
            key: keys::BACKUP_DIR,
            show: |c| c.backup.dir.display().to_string(),
            default: "/var/lib/snakkaz-pay/backups",
            env: ("/data/backups", "/data/backups"),
            toml: (r#""/srv/backups""#, "/srv/backups"),
            invalid: None,
        },
        KeyCase {
            key: keys::BACKUP_RECIPIENTS,
            show: |c| c.backup.recipients.join(","),
            default: "",
            env: (AGE_PUB_A, AGE_PUB_A),
            toml: (
                concat!(
                    r#"[""#,
                    "age17m3xx7vpe3qmacclc27ezh89mtajmcnhmjjdkp0xdwty748fd35s9z4frw",
                    r#""]"#
                ),
                AGE_PUB_B,
            ),
            invalid: Some((
                "AGE-SECRET-KEY-1QQQ",
                "an age SECRET key was given; give the public key",
            )),
        },
        KeyCase {
            key: keys::BACKUP_PASSPHRASE_FILE,
            show: |c| format!("{:?}", c.backup.passphrase_file),
            default: "None",
            env: ("/etc/pp", r#"Some("/etc/pp")"#),
            toml: (r#""/etc/pp2""#, r#"Some("/etc/pp2")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::BACKUP_IDENTITY_FILE,
            show: |c| format!("{:?}", c.backup.identity_file),
            default: "None",
            env: ("/media/usb/key.txt", r#"Some("/media/usb/key.txt")"#),
            toml: (r#""/mnt/key.txt""#, r#"Some("/mnt/key.txt")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::BACKUP_KEEP_DAILY,
            show: |c| c.backup.keep_daily.to_string(),
            default: "7",
            env: ("14", "14"),
            toml: ("1", "1"),
            invalid: Some(("0", "0 is out of range (1 to 3650)")),
        },
        KeyCase {
            key: keys::BACKUP_KEEP_WEEKLY,
            show: |c| c.backup.keep_weekly.to_string(),
            default: "4",
            env: ("0", "0"),
            toml: ("52", "52"),
            invalid: Some(("521", "521 is out of range (0 to 520)")),
        },
        KeyCase {
            key: keys::BACKUP_REMOTE,
            show: |c| format!("{:?}", c.backup.remote),
            default: "None",
            env: ("offsite:snakkaz", r#"Some("offsite:snakkaz")"#),
            toml: (r#""b2:bucket/pay""#, r#"Some("b2:bucket/pay")"#),
            invalid: Some(("nocolon", r#""nocolon" is not an rclone remote path"#)),
        },
        KeyCase {
            key: keys::BACKUP_RCLONE_CONFIG,
            show: |c| format!("{:?}", c.backup.rclone_config),
            default: "None",
            env: ("/etc/rclone.conf", r#"Some("/etc/rclone.conf")"#),
            toml: (r#""/etc/r2.conf""#, r#"Some("/etc/r2.conf")"#),
            invalid: None,
        },
        KeyCase {
            key: keys::BACKUP_VERIFY_MAX_AGE_SECS,
            show: |c| c.backup.verify_max_age.as_secs().to_string(),
            default: "691200",
            env: ("86400", "86400"),
            toml: ("3600", "3600"),
            invalid: Some(("3599", "3599 is out of range (3600 to 7776000 s)")),
        },
        KeyCase {
            key: keys::RESTORE_SKIP_AHEAD,
            show: |c| c.backup.restore_skip_ahead.to_string(),
            default: "1000",
            env: ("5000", "5000"),
            toml: ("0", "0"),
            invalid: Some(("1000001", "1000001 is out of range (0 to 1000000)")),
        },
    ]
}

/// Two age X25519 public keys (generated with `age-keygen`; the identities were discarded).
const AGE_PUB_A: &str = "age17n54n8jchm4nvvq59xaql4kklzewtwfl6xxtjymlw0qpfkfcy37q5rjeqs";
const AGE_PUB_B: &str = "age17m3xx7vpe3qmacclc27ezh89mtajmcnhmjjdkp0xdwty748fd35s9z4frw";

fn shown(r: Result<Config, ConfigError>, show: fn(&Config) -> String) -> String {
    match r {
        Ok(c) => show(&c),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_key_default_valid_invalid_and_env_over_file() {
    let cases = key_cases();
    // Every key but the descriptors and the Electrum JSON-RPC group (own tests) and the
    // password (env only) has a row.
    for key in keys::ALL {
        let covered = cases.iter().any(|c| c.key == key)
            || [
                keys::DESCRIPTOR,
                keys::CHANGE_DESCRIPTOR,
                keys::WALLET_PASSWORD,
                keys::ELECTRUM_RPC_LISTEN,
                keys::ELECTRUM_RPC_USER,
                keys::ELECTRUM_RPC_PASSWORD_FILE,
            ]
            .contains(&key);
        assert!(covered, "{key} has no test row");
    }
    for case in cases {
        let key = case.key;
        let tk = keys::toml_key(key);
        let (default, _) = load_with("", key, &[]);
        assert_eq!(shown(default, case.show), case.default, "{key}: default");

        let (from_env, _) = load_with("", key, &[(key, case.env.0)]);
        assert_eq!(shown(from_env, case.show), case.env.1, "{key}: from env");

        let toml = format!("{tk} = {}\n", case.toml.0);
        let (from_file, _) = load_with(&toml, key, &[]);
        assert_eq!(shown(from_file, case.show), case.toml.1, "{key}: from file");

        let (both, _) = load_with(&toml, key, &[(key, case.env.0)]);
        assert_eq!(
            shown(both, case.show),
            case.env.1,
            "{key}: env overrides file"
        );

        // An empty environment variable counts as unset: the file's value stays.
        let (empty_env, _) = load_with(&toml, key, &[(key, "")]);
        assert_eq!(shown(empty_env, case.show), case.toml.1, "{key}: empty env");

        if let Some((bad, message)) = case.invalid {
            let (r, _) = load_with("", key, &[(key, bad)]);
            let e = r.unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{key}: {message}")),
                "{key}: env error: {e}"
            );
            assert!(!e.contains('\n'), "{key}: one line: {e}");

            let quoted = toml::Value::String(bad.into()).to_string();
            let (r, path) = load_with(&format!("{tk} = {quoted}\n"), key, &[]);
            let e = r.unwrap_err().to_string();
            let expected = format!("{tk} (in {}): {message}", path.display());
            assert!(
                e.starts_with(&expected),
                "{key}: file error: {e}\nexpected: {expected}"
            );
        }
    }
}

#[test]
fn all_defaults() {
    let c = load("", &[]).unwrap();
    assert!(c.enabled);
    assert_eq!(c.network, Network::Regtest);
    assert_eq!(c.descriptor, canonical(&tpub_desc()));
    assert_eq!(c.change_descriptor, None);
    assert_eq!(
        c.servers,
        [ElectrumServer {
            host: "electrum.example".into(),
            port: 50002,
            tls: true
        }]
    );
    assert_eq!(c.ca_file, None);
    assert_eq!(c.check_interval, Duration::from_secs(30));
    assert_eq!(c.electrum_timeout, Duration::from_secs(20));
    assert_eq!(c.min_confirmations, 1);
    assert_eq!(c.db_path, Path::new(DEFAULT_DB_PATH));
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        (c.api_token_file.as_ref(), c.admin_token_file.as_ref()),
        (None, None)
    );
    assert_eq!(c.page_auth, PageAuth::None);
    assert_eq!(c.payment_expiry, Duration::from_secs(3600));
    assert_eq!(c.late_payment_window, Duration::from_secs(7 * 86_400));
    assert_eq!(c.auto_complete_depth, None);
    assert_eq!(c.wallet_password, None);
    assert_eq!(c.log_filter, "info");
    assert_eq!(c.supabase_db_url_file, None);
    assert!(c.supabase_manage_schema);
    assert_eq!(c.supabase_ca_file, None);
    assert_eq!(c.sink_lag_alert, Duration::from_secs(300));
    assert_eq!(
        c.policy(),
        Policy {
            min_confirmations: 1,
            auto_complete_depth: None
        }
    );
}

#[test]
fn range_boundaries() {
    let ok = |k: &str, v: &str| load("", &[(k, v)]).map(|_| ()).map_err(|e| e.to_string());
    assert!(ok(keys::MIN_CONFIRMATIONS, "100").is_ok());
    assert!(
        ok(keys::MIN_CONFIRMATIONS, "101")
            .unwrap_err()
            .contains("101 is out of range (1 to 100)")
    );
    assert!(
        ok(keys::MIN_CONFIRMATIONS, "-1")
            .unwrap_err()
            .contains(r#""-1" is not a whole number"#)
    );
    assert!(ok(keys::CHECK_INTERVAL, "86400000").is_ok());
    assert!(ok(keys::CHECK_INTERVAL, "86400001").is_err());
    assert!(
        ok(keys::CHECK_INTERVAL, "30s")
            .unwrap_err()
            .contains(r#""30s" is not a whole number"#)
    );
    assert!(ok(keys::PAYMENT_EXPIRY_SECS, "2592001").is_err());
    assert!(ok(keys::LATE_PAYMENT_WINDOW_SECS, "7776000").is_ok());
    assert!(ok(keys::ELECTRUM_TIMEOUT_SECS, "301").is_err());
    assert!(
        ok(keys::ELECTRUM_PORT, "0")
            .unwrap_err()
            .contains(r#""0" is not a port number"#)
    );
    assert!(
        ok(keys::ELECTRUM_PORT, "65536")
            .unwrap_err()
            .contains(r#""65536" is not a port number"#)
    );
    assert!(ok(keys::ELECTRUM_PORT, "65535").is_ok());
    for v in ["TRUE", "1", "yes", "on", "False", "0", "no", "off"] {
        assert!(ok(keys::ENABLED, v).is_ok(), "{v}");
    }
}

#[test]
fn auto_complete_depth_not_below_min_confirmations() {
    let e = err(
        "",
        &[
            (keys::MIN_CONFIRMATIONS, "6"),
            (keys::AUTO_COMPLETE_DEPTH, "3"),
        ],
    );
    assert_eq!(
        e,
        "SNAKKAZ_PAY_AUTO_COMPLETE_DEPTH: 3 is below ELECTRUM_MIN_CONFIRMATIONS (6); payments must be confirmed before they complete"
    );
    let c = load(
        "",
        &[
            (keys::MIN_CONFIRMATIONS, "6"),
            (keys::AUTO_COMPLETE_DEPTH, "6"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.policy(),
        Policy {
            min_confirmations: 6,
            auto_complete_depth: Some(6)
        }
    );
}
