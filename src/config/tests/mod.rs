//! Configuration tests: the shared harness, the rules between keys, unknown and secret keys,
//! file errors and the `init` round trip. Per-key cases live in `per_key`, descriptors in
//! `descriptors`.

mod account_keys;
mod descriptors;
mod electrum_rpc;
mod per_key;

use std::io::Write as _;

use bdk_wallet::bitcoin::NetworkKind;
use bdk_wallet::bitcoin::bip32::{Xpriv, Xpub};
use bdk_wallet::bitcoin::secp256k1::Secp256k1;

use super::*;
use bdk_wallet::miniscript::{Descriptor, DescriptorPublicKey};
use std::str::FromStr;

fn xprv(kind: NetworkKind) -> Xpriv {
    Xpriv::new_master(kind, &[7u8; 32]).unwrap()
}

fn xpub(kind: NetworkKind) -> String {
    Xpub::from_priv(&Secp256k1::new(), &xprv(kind)).to_string()
}

/// A test-network receive descriptor.
fn tpub_desc() -> String {
    format!("wpkh({}/0/*)", xpub(NetworkKind::Test))
}

/// The canonical form (with checksum) the config keeps.
fn canonical(desc: &str) -> String {
    Descriptor::<DescriptorPublicKey>::from_str(desc)
        .unwrap()
        .to_string()
}

/// A config file with `toml` in it, kept alive by the returned guard.
struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn file(toml: &str) -> File {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(toml.as_bytes())
        .unwrap();
    File { _dir: dir, path }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The settings every test needs, so one key can vary at a time.
fn base() -> Vec<(&'static str, String)> {
    vec![
        (keys::NETWORK, "regtest".into()),
        (keys::DESCRIPTOR, tpub_desc()),
        (keys::ELECTRUM_HOST, "electrum.example".into()),
    ]
}

/// Load with `toml` as the file and `base()` (minus `without`) plus `extra` as the environment.
fn load_with(
    toml: &str,
    without: &str,
    extra: &[(&str, &str)],
) -> (Result<Config, ConfigError>, PathBuf) {
    let f = file(toml);
    let mut e: HashMap<String, String> = base()
        .into_iter()
        .filter(|(k, _)| *k != without)
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    e.extend(env(extra));
    (Config::load(Some(&f.path), &e), f.path.clone())
}

fn load(toml: &str, extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_with(toml, "", extra).0
}

fn err(toml: &str, extra: &[(&str, &str)]) -> String {
    load(toml, extra).unwrap_err().to_string()
}

/// The servers as one comparable string.
fn server_list(c: &Config) -> String {
    c.servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn servers_primary_first_then_failover_without_duplicates() {
    let c = load(
        "electrum_servers = [\"tcp://b.example:50001\", \"ssl://electrum.example:50002\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        server_list(&c),
        "ssl://electrum.example:50002,tcp://b.example:50001"
    );
    // Only the failover list: its first entry is the primary.
    let (c, _) = load_with(
        "",
        keys::ELECTRUM_HOST,
        &[(keys::ELECTRUM_SERVERS, "tcp://a:1")],
    );
    assert_eq!(server_list(&c.unwrap()), "tcp://a:1");
    // Disabled: no server needed.
    let (c, _) = load_with("", keys::ELECTRUM_HOST, &[(keys::ENABLED, "false")]);
    assert!(c.unwrap().servers.is_empty());
    // IPv6 host literals, with or without brackets.
    let c = load(
        "",
        &[
            (keys::ELECTRUM_HOST, "[::1]"),
            (keys::ELECTRUM_PROTOCOL, "tcp"),
        ],
    )
    .unwrap();
    assert_eq!(server_list(&c), "tcp://[::1]:50001");
    assert_eq!(c.servers[0].host, "::1");
}

#[test]
fn server_url_errors() {
    for (url, message) in [
        (
            "a.example:1",
            r#""a.example:1": expected tcp://host:port or ssl://host:port"#,
        ),
        (
            "tcp://a.example:0",
            r#""tcp://a.example:0": "0" is not a port number (1-65535)"#,
        ),
        (
            "tcp://a.example:x",
            r#""tcp://a.example:x": "x" is not a port number (1-65535)"#,
        ),
        ("tcp://", r#""tcp://": "" is not a host name or IP address"#),
        (
            "tcp://a b:1",
            r#""tcp://a b:1": "a b" is not a host name or IP address"#,
        ),
        (
            "ssl://[::1",
            r#""ssl://[::1": expected tcp://host:port or ssl://host:port"#,
        ),
    ] {
        let e = err("", &[(keys::ELECTRUM_SERVERS, url)]);
        assert_eq!(
            e,
            format!("SNAKKAZ_PAY_ELECTRUM_SERVERS: {message}"),
            "{url}"
        );
    }
    let e = err("electrum_servers = [\"tcp://a:1\", 5]\n", &[]);
    assert!(
        e.ends_with("expected an array of strings, found a TOML integer in it"),
        "{e}"
    );
}

#[test]
fn page_auth_follows_the_listen_address() {
    let off_loopback = (keys::LISTEN, "0.0.0.0:8080");
    let e = err("", &[off_loopback]);
    assert_eq!(
        e,
        "SNAKKAZ_PAY_PAGE_AUTH: token (the default off loopback) needs SNAKKAZ_PAY_API_TOKEN_FILE or SNAKKAZ_PAY_ADMIN_TOKEN_FILE; set one, or set page_auth to none explicitly"
    );
    let c = load("", &[off_loopback, (keys::API_TOKEN_FILE, "/etc/t")]).unwrap();
    assert_eq!(c.page_auth, PageAuth::Token);
    let c = load("", &[off_loopback, (keys::PAGE_AUTH, "none")]).unwrap();
    assert_eq!(c.page_auth, PageAuth::None);
    let c = load(
        "",
        &[
            (keys::PAGE_AUTH, "token"),
            (keys::ADMIN_TOKEN_FILE, "/etc/t"),
        ],
    )
    .unwrap();
    assert_eq!(c.page_auth, PageAuth::Token);
    let e = err("page_auth = \"token\"\n", &[]);
    assert!(
        e.starts_with("page_auth (in ") && e.contains("): token needs"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    let f = file("electrum_hots = \"x\"\n");
    let e = Config::load(Some(&f.path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "electrum_hots (in {}): unknown key; did you mean electrum_host?",
            f.path.display()
        )
    );
    let e = err("SNAKKAZ_PAY_LISTEN = \"127.0.0.1:1\"\n", &[]);
    assert!(e.ends_with("unknown key; did you mean listen?"), "{e}");
    let e = err("frobnicate = 1\n", &[]);
    assert!(e.ends_with("unknown key"), "{e}");
    let e = err("[electrum]\nhost = \"x\"\n", &[]);
    assert!(e.starts_with("electrum (in "), "{e}");
}

#[test]
fn wallet_password_from_env_only_and_never_shown() {
    let f = file("electrum_wallet_password = \"hunter2\"\n");
    let e = Config::load(Some(&f.path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "electrum_wallet_password (in {}): secrets are not accepted in the config file; set ELECTRUM_WALLET_PASSWORD in the environment (or a systemd credential) and remove it from the file",
            f.path.display()
        )
    );
    assert!(!e.contains("hunter2"));
    let c = load("", &[(keys::WALLET_PASSWORD, "correct horse battery")]).unwrap();
    assert_eq!(
        c.wallet_password.as_ref().map(Secret::expose),
        Some("correct horse battery")
    );
    assert!(!format!("{c:?}").contains("correct horse"));
    assert!(!c.to_toml().contains("correct horse"));
    assert_eq!(
        load("", &[(keys::WALLET_PASSWORD, "")])
            .unwrap()
            .wallet_password,
        None
    );
}

#[test]
fn file_errors() {
    let e = Config::load(Some(Path::new("/nonexistent/snakkaz.toml")), &env(&[])).unwrap_err();
    assert!(matches!(e, ConfigError::ReadFile { .. }));
    assert_eq!(
        e.to_string(),
        "/nonexistent/snakkaz.toml: cannot read the config file"
    );

    let f = file("listen = \"127.0.0.1:1\"\nelectrum_port = = 3\n");
    let e = Config::load(Some(&f.path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}: invalid TOML at line 2: ", f.path.display())),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");

    let e = err("electrum_port = [1]\n", &[]);
    assert!(
        e.ends_with("expected a string, whole number or boolean, found a TOML array"),
        "{e}"
    );
    let e = err("electrum_check_interval = 30000.0\n", &[]);
    assert!(e.ends_with("found a TOML float"), "{e}");
}

#[test]
fn missing_default_file_is_fine() {
    if Path::new(DEFAULT_CONFIG_PATH).exists() {
        return; // A developer machine with a real config; nothing to prove here.
    }
    let e: HashMap<String, String> = base().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert!(Config::load(None, &e).is_ok());
    assert!(Config::load(Some(Path::new(DEFAULT_CONFIG_PATH)), &e).is_ok());
}

#[test]
fn to_toml_round_trips() {
    let tpub = xpub(NetworkKind::Test);
    let full = load(
        "",
        &[
            (keys::ENABLED, "true"),
            (keys::ELECTRUM_HOST, "fulcrum.lan"),
            (keys::ELECTRUM_PORT, "50011"),
            (keys::ELECTRUM_PROTOCOL, "tcp"),
            (
                keys::ELECTRUM_SERVERS,
                "ssl://b.example:50002,tcp://[fd00::1]:50001",
            ),
            (keys::ELECTRUM_CA_FILE, "/etc/snakkaz-pay/ca.pem"),
            (keys::DB_PATH, "/srv/pay \"db\".redb"),
            (keys::WALLET_PASSWORD, "do-not-write-me"),
            (keys::MIN_CONFIRMATIONS, "3"),
            (keys::CHECK_INTERVAL, "60000"),
            (keys::CHANGE_DESCRIPTOR, &format!("wpkh({tpub}/1/*)")),
            (keys::LISTEN, "0.0.0.0:8080"),
            (keys::API_TOKEN_FILE, "/etc/snakkaz-pay/api.token"),
            (keys::ADMIN_TOKEN_FILE, "/etc/snakkaz-pay/admin.token"),
            (keys::PAGE_AUTH, "token"),
            (keys::PAYMENT_EXPIRY_SECS, "900"),
            (keys::LATE_PAYMENT_WINDOW_SECS, "0"),
            (keys::AUTO_COMPLETE_DEPTH, "6"),
            (keys::ELECTRUM_TIMEOUT_SECS, "10"),
            (keys::LOG, "info,snakkaz_pay=debug"),
            (
                keys::SUPABASE_DB_URL_FILE,
                "/etc/snakkaz-pay/supabase-db-url",
            ),
            (keys::SUPABASE_MANAGE_SCHEMA, "false"),
            (keys::SUPABASE_CA_FILE, "/etc/snakkaz-pay/supabase-ca.pem"),
            (keys::ARCHIVE_UNPAID, "true"),
            (keys::SINK_LAG_ALERT_SECS, "900"),
            (keys::ELECTRUM_RPC_LISTEN, "127.0.0.1:7777"),
            (keys::ELECTRUM_RPC_USER, "node \"connector\""),
            (keys::ELECTRUM_RPC_PASSWORD_FILE, "/etc/snakkaz-pay/rpc-pw"),
        ],
    )
    .unwrap();
    let disabled = load_with("", keys::ELECTRUM_HOST, &[(keys::ENABLED, "false")])
        .0
        .unwrap();
    for c in [load("", &[]).unwrap(), full, disabled] {
        let text = c.to_toml();
        assert!(!text.contains("do-not-write-me"));
        let f = file(&text);
        let back = Config::load(Some(&f.path), &env(&[])).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            back,
            Config {
                wallet_password: None,
                ..c
            },
            "{text}"
        );
    }
}

#[test]
fn electrum_server_display() {
    let s = |host: &str, port, tls| {
        ElectrumServer {
            host: host.into(),
            port,
            tls,
        }
        .to_string()
    };
    assert_eq!(
        s("electrum.example", 50002, true),
        "ssl://electrum.example:50002"
    );
    assert_eq!(s("10.0.0.1", 50001, false), "tcp://10.0.0.1:50001");
    assert_eq!(s("::1", 1, false), "tcp://[::1]:1");
}

#[test]
fn mainnet_refuses_plain_tcp_to_another_host_unless_accepted() {
    let main_desc = format!("wpkh({}/0/*)", xpub(NetworkKind::Main));
    let mainnet = [
        (keys::NETWORK, "bitcoin"),
        (keys::DESCRIPTOR, main_desc.as_str()),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut v = mainnet.to_vec();
        v.extend_from_slice(extra);
        load("", &v)
    };
    let e = with(&[(keys::ELECTRUM_PROTOCOL, "tcp")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ELECTRUM_PROTOCOL: tcp://electrum.example:50001 is plain tcp:// to another host on mainnet: anyone on the path can rewrite what the server says; use tls (ssl://), a server on this box, or set SNAKKAZ_PAY_ACCEPT_UNAUTHENTICATED_SERVER=true to accept it"
    );
    // A plain failover entry is named by its own key.
    let e = with(&[(keys::ELECTRUM_SERVERS, "tcp://b.example:50001")])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("SNAKKAZ_PAY_ELECTRUM_SERVERS"), "{e}");
    // TLS, a server on this box, or the operator's explicit acceptance are fine.
    assert!(with(&[]).is_ok(), "TLS is the default");
    for host in ["127.0.0.1", "localhost", "::1"] {
        assert!(
            with(&[
                (keys::ELECTRUM_HOST, host),
                (keys::ELECTRUM_PROTOCOL, "tcp")
            ])
            .is_ok(),
            "{host}"
        );
    }
    assert!(
        with(&[
            (keys::ELECTRUM_PROTOCOL, "tcp"),
            (keys::ACCEPT_UNAUTHENTICATED_SERVER, "true")
        ])
        .is_ok()
    );
    // Test networks keep plain TCP (the devnet, a private signet).
    assert!(load("", &[(keys::ELECTRUM_PROTOCOL, "tcp")]).is_ok());
}
