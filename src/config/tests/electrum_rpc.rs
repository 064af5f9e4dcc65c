//! The Electrum-compatible JSON-RPC group: off by default, loopback only, password file
//! required once a listen address is set.

use super::*;

#[test]
fn electrum_rpc_is_off_unless_a_listen_address_is_set() {
    let c = load("", &[]).unwrap();
    assert_eq!(c.electrum_rpc, None);
    // User and password file alone do not switch it on.
    let c = load(
        "",
        &[
            (keys::ELECTRUM_RPC_USER, "u"),
            (keys::ELECTRUM_RPC_PASSWORD_FILE, "/p"),
        ],
    )
    .unwrap();
    assert_eq!(c.electrum_rpc, None);
}

#[test]
fn electrum_rpc_settings_from_env_and_file() {
    let c = load(
        "",
        &[
            (keys::ELECTRUM_RPC_LISTEN, "127.0.0.1:7777"),
            (keys::ELECTRUM_RPC_PASSWORD_FILE, "/etc/pw"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.electrum_rpc,
        Some(ElectrumRpc {
            listen: "127.0.0.1:7777".parse().unwrap(),
            user: DEFAULT_ELECTRUM_RPC_USER.to_owned(),
            password_file: PathBuf::from("/etc/pw"),
        })
    );
    let c = load(
        "electrum_rpc_listen = \"[::1]:7000\"\nelectrum_rpc_user = \"node\"\nelectrum_rpc_password_file = \"/x\"\n",
        &[],
    )
    .unwrap();
    let rpc = c.electrum_rpc.unwrap();
    assert_eq!((rpc.listen.port(), rpc.user.as_str()), (7000, "node"));
}

#[test]
fn electrum_rpc_errors_name_the_key() {
    assert_eq!(
        err("", &[(keys::ELECTRUM_RPC_LISTEN, "127.0.0.1:7777")]),
        "SNAKKAZ_PAY_ELECTRUM_RPC_PASSWORD_FILE: required: a file (mode 0600) with the password the Electrum JSON-RPC clients use (Electrum's rpcpassword), since SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN is set"
    );
    let e = err(
        "",
        &[
            (keys::ELECTRUM_RPC_LISTEN, "0.0.0.0:7777"),
            (keys::ELECTRUM_RPC_PASSWORD_FILE, "/p"),
        ],
    );
    assert!(
        e.starts_with("SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN: 0.0.0.0:7777 is not a loopback address"),
        "{e}"
    );
    let e = err("", &[(keys::ELECTRUM_RPC_LISTEN, "7777")]);
    assert!(
        e.starts_with("SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN: \"7777\" is not a socket address"),
        "{e}"
    );
}
