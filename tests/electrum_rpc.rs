//! The Electrum-compatible JSON-RPC against the real thing: the Electrum 4.3 daemon and
//! snakkaz-pay watch the same account on the same devnet, and the same calls get the same
//! shapes and values through a payment, its confirmations and a reorg.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use common::appliance::{Appliance, base_env, write_private};
use common::devnet::Devnet;
use common::electrum::{Electrum, OnlineDaemon};
use common::wait_until;
use serde_json::{Value, json};

const USER: &str = "node-connector";
const PASSWORD: &str = "rpc-password-for-tests-0123";

/// One JSON-RPC endpoint with its credentials.
struct Rpc {
    addr: String,
}

impl Rpc {
    /// POSTs `body` with `auth` (user, password); returns (status, headers, body).
    fn raw(&self, auth: Option<(&str, &str)>, body: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some((u, p)) = auth {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Authorization: Basic {b}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, head.to_owned(), body.to_owned())
    }

    /// Calls `method`; returns the whole envelope.
    fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"id": 7, "method": method, "params": params}).to_string();
        let (code, _, body) = self.raw(Some((USER, PASSWORD)), &body);
        assert_eq!(code, 200, "{method}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["id"].clone(), v["jsonrpc"].clone()),
            (json!(7), json!("2.0"))
        );
        v
    }

    fn result(&self, method: &str, params: Value) -> Value {
        let v = self.call(method, params);
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }
}

/// Both endpoints answer `method` with equal results.
fn same(electrum: &Rpc, ours: &Rpc, method: &str, params: Value) -> Value {
    let e = electrum.result(method, params.clone());
    let o = ours.result(method, params);
    assert_eq!(o, e, "{method}: snakkaz-pay vs Electrum");
    o
}

/// Waits until both answer `method` with `expected`.
fn both_reach(electrum: &Rpc, ours: &Rpc, method: &str, params: Value, expected: Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let e = electrum.result(method, params.clone());
        let o = ours.result(method, params.clone());
        if e == expected && o == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {method} = {expected}: Electrum says {e}, snakkaz-pay says {o}"
        );
        std::thread::sleep(common::POLL);
    }
}

/// A request's fields that depend on neither the wallet's ids nor the creation second.
fn comparable(mut r: Value) -> Value {
    let o = r.as_object_mut().unwrap();
    for k in ["request_id", "timestamp", "expiration", "status_str", "URI"] {
        assert!(o.remove(k).is_some(), "{k} missing");
    }
    r
}

#[test]
fn the_json_rpc_answers_as_the_electrum_daemon_on_the_same_account() {
    let devnet = Devnet::start();
    // Electrum: a watch-only wallet of the account (as on a box that never held keys).
    let seed = Electrum::new();
    seed.offline(&["create", "--seed_type", "segwit"]);
    let key = seed.offline(&["getmpk"]);
    let electrum = Electrum::new();
    electrum.offline(&["restore", &key]);
    for (k, v) in [
        ("rpcsock", "tcp"),
        ("rpcport", "0"),
        ("rpcuser", USER),
        ("rpcpassword", PASSWORD),
    ] {
        electrum.offline(&["setconfig", k, v]);
    }
    let server = format!(
        "{}:{}:t",
        devnet.electrum_host(),
        devnet.electrum_tcp_port()
    );
    electrum.run(false, &["daemon", "-d", "--server", &server, "--oneserver"]);
    let _daemon = OnlineDaemon(&electrum);
    electrum.run(false, &["load_wallet"]);
    let lock = std::fs::read_to_string(electrum.dir.path().join("regtest/daemon")).unwrap();
    // ('tcp', ('127.0.0.1', PORT), created)
    let port = lock.split(", ").nth(2).unwrap().trim_end_matches(')');
    let e = Rpc {
        addr: format!("127.0.0.1:{port}"),
    };

    // snakkaz-pay on the same account, the endpoint on.
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("electrum-rpc-password");
    let mut env = base_env(
        dir.path(),
        devnet.electrum_host(),
        devnet.electrum_tcp_port(),
        false,
    );
    std::fs::create_dir_all(dir.path()).unwrap();
    write_private(&pw_file, PASSWORD);
    env.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "SNAKKAZ_PAY_DESCRIPTOR"
                | "SNAKKAZ_PAY_CHANGE_DESCRIPTOR"
                | "ELECTRUM_MIN_CONFIRMATIONS"
        )
    });
    for (k, v) in [
        ("SNAKKAZ_PAY_DESCRIPTOR", key.as_str()),
        // Electrum calls a request paid at one confirmation.
        ("ELECTRUM_MIN_CONFIRMATIONS", "1"),
        ("SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN", "127.0.0.1:0"),
        ("SNAKKAZ_PAY_ELECTRUM_RPC_USER", USER),
        (
            "SNAKKAZ_PAY_ELECTRUM_RPC_PASSWORD_FILE",
            pw_file.to_str().unwrap(),
        ),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    let app = Appliance::start(dir.path(), env);
    app.wait_status(Duration::from_secs(60), "Electrum connection", |s| {
        s["electrum"]["connected"] == true
    });
    let ours = Rpc {
        addr: wait_until(
            Duration::from_secs(10),
            "the JSON-RPC address in the log",
            || {
                app.log()
                    .lines()
                    .find(|l| l.contains("Electrum JSON-RPC serving"))
                    .and_then(|l| l.split("listen=").nth(1))
                    .map(|a| a.split_whitespace().next().unwrap().to_owned())
            },
        ),
    };

    // Authentication: 401 with Electrum's challenge without credentials, 403 with wrong ones.
    let body = json!({"id": 1, "method": "version", "params": []}).to_string();
    for rpc in [&e, &ours] {
        let (code, head, text) = rpc.raw(None, &body);
        assert_eq!((code, text.as_str()), (401, "Unauthorized"));
        assert!(
            head.contains("WWW-Authenticate: Basic realm=Electrum")
                || head.contains("www-authenticate: Basic realm=Electrum"),
            "{head}"
        );
        let (code, _, text) = rpc.raw(Some((USER, "wrong")), &body);
        assert_eq!((code, text.as_str()), (403, "Forbidden"));
        let (code, _, text) = rpc.raw(
            Some((USER, PASSWORD)),
            r#"{"id": 1, "method": "no_such_method"}"#,
        );
        assert_eq!((code, text.as_str()), (500, "Invalid Request"));
    }

    both_reach(&e, &ours, "is_synchronized", json!([]), json!(true));
    same(&e, &ours, "version", json!([]));
    same(&e, &ours, "getmpk", json!([]));
    same(&e, &ours, "getbalance", json!([]));
    // Fee rates: on regtest Electrum answers its hard-coded rate whatever the method.
    for params in [
        json!([]),
        json!(["static"]),
        json!(["eta", "0.5"]),
        json!(["mempool"]),
    ] {
        same(&e, &ours, "getfeerate", params);
    }
    same(&e, &ours, "onchain_history", json!([]));
    // Errors: Electrum's envelope and message.
    for (method, params) in [
        ("getfeerate", json!(["fastest"])),
        ("get_request", json!(["no-such-request"])),
        ("getseed", json!([])),
        ("getprivatekeys", json!(["x"])),
    ] {
        let (a, b) = (e.call(method, params.clone()), ours.call(method, params));
        assert_eq!(a["error"], b["error"], "{method}");
        assert_eq!(a["error"]["code"], 1);
    }

    // A request on each side: the first unused address of the same account.
    let req_e = e.result(
        "add_request",
        json!({"amount": "0.0015", "memo": "order 42", "expiration": 3600}),
    );
    let req_o = ours.result(
        "add_request",
        json!({"amount": "0.0015", "memo": "order 42", "expiration": 3600}),
    );
    assert_eq!(comparable(req_o.clone()), comparable(req_e.clone()));
    assert_eq!(req_o["status_str"], "Expires in about 1 hour");
    assert_eq!(req_e["status_str"], "Expires in about 1 hour");
    let address = req_o["address"].as_str().unwrap().to_owned();
    let id_o = req_o["request_id"].as_str().unwrap().to_owned();
    let id_e = req_e["request_id"].as_str().unwrap().to_owned();
    for m in ["validateaddress", "ismine"] {
        same(&e, &ours, m, json!([address]));
        same(
            &e,
            &ours,
            m,
            json!(["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]),
        );
    }

    // The next unused address: the same one on both the first time (Electrum skips addresses
    // with requests); snakkaz-pay then hands out a new one on every call, Electrum repeats it.
    let unused = same(&e, &ours, "getunusedaddress", json!([]));
    assert_ne!(unused, json!(address));
    let again = ours.result("getunusedaddress", json!([]));
    assert_ne!(again, unused, "snakkaz-pay handed out an address twice");
    assert_eq!(e.result("ismine", json!([again])), json!(true));
    // Revealed addresses are the start of Electrum's list (which adds its gap look-ahead).
    for params in [
        json!({"receiving": true}),
        json!({"change": true}),
        json!([]),
    ] {
        let listed_e = e.result("listaddresses", params.clone());
        let listed_o = ours.result("listaddresses", params.clone());
        let (le, lo) = (listed_e.as_array().unwrap(), listed_o.as_array().unwrap());
        if params == json!([]) {
            assert!(
                lo.iter().all(|a| le.contains(a)),
                "{lo:?} not all in {le:?}"
            );
        } else {
            assert!(!lo.is_empty() || params == json!({"change": true}));
            assert_eq!(&le[..lo.len()], &lo[..], "listaddresses {params}");
        }
    }

    // Paid: in the mempool, then one and two confirmations.
    let txid = devnet.pay(&address, 150_000);
    both_reach(
        &e,
        &ours,
        "getbalance",
        json!([]),
        json!({"confirmed": "0", "unconfirmed": "0.0015"}),
    );
    // In the mempool: height 0, the server's fee, the request's memo as label.
    let h = same(&e, &ours, "onchain_history", json!([]));
    assert_eq!(h["transactions"][0]["label"], "order 42", "{h}");
    assert_eq!(h["transactions"][0]["height"], 0, "{h}");
    devnet.mine(1);
    both_reach(
        &e,
        &ours,
        "getbalance",
        json!([]),
        json!({"confirmed": "0.0015"}),
    );
    both_reach(
        &e,
        &ours,
        "get_tx_status",
        json!([txid]),
        json!({"confirmations": 1}),
    );
    wait_until(Duration::from_secs(60), "both requests paid", || {
        let a = e.result("get_request", json!([id_e]));
        let b = ours.result("get_request", json!([id_o]));
        (a["status"] == 3 && b["status"] == 3).then_some((a, b))
    });
    let (a, b) = (
        e.result("get_request", json!([id_e])),
        ours.result("get_request", json!([id_o])),
    );
    assert_eq!(comparable(b.clone()), comparable(a.clone()));
    assert_eq!(
        (a["status_str"].clone(), b["status_str"].clone()),
        (json!("Paid"), json!("Paid"))
    );
    same(&e, &ours, "getaddresshistory", json!([address]));
    same(&e, &ours, "getaddressbalance", json!([address]));
    same(&e, &ours, "gettransaction", json!([txid]));
    same(&e, &ours, "listunspent", json!([]));
    // Confirmed: block time, position in the block, no fee for someone else's transaction.
    let h = same(&e, &ours, "onchain_history", json!([]));
    assert_eq!(h["transactions"][0]["confirmations"], 1, "{h}");
    assert!(
        h["transactions"][0]["txpos_in_block"].as_u64().is_some(),
        "{h}"
    );
    assert_eq!(h["summary"]["end"]["BTC_balance"], "0.0015", "{h}");
    let height = h["transactions"][0]["height"].as_i64().unwrap();
    same(
        &e,
        &ours,
        "onchain_history",
        json!({"from_height": height, "to_height": height + 10}),
    );
    same(
        &e,
        &ours,
        "onchain_history",
        json!({"from_height": height + 1}),
    );
    same(&e, &ours, "onchain_history", json!({"year": 1999}));
    let listed_e = e.result("list_requests", json!({"paid": true}));
    let listed_o = ours.result("list_requests", json!({"paid": true}));
    assert_eq!(
        listed_o
            .as_array()
            .unwrap()
            .iter()
            .map(|r| comparable(r.clone()))
            .collect::<Vec<_>>(),
        listed_e
            .as_array()
            .unwrap()
            .iter()
            .map(|r| comparable(r.clone()))
            .collect::<Vec<_>>()
    );
    devnet.mine(1);
    both_reach(
        &e,
        &ours,
        "get_tx_status",
        json!([txid]),
        json!({"confirmations": 2}),
    );

    // A reorg takes the payment out of the chain and the mempool: the server's history is
    // empty for both, and neither counts it as confirmed. (Electrum keeps the vanished
    // transaction as a "local" one in its unconfirmed balance; snakkaz-pay drops it: a
    // documented difference.)
    devnet.reorg(2, &[&txid]);
    both_reach(&e, &ours, "getaddresshistory", json!([address]), json!([]));
    wait_until(
        Duration::from_secs(90),
        "the confirmed balance to drop on both",
        || {
            let a = e.result("getbalance", json!([]));
            let b = ours.result("getbalance", json!([]));
            (a["confirmed"] == "0" && b == json!({"confirmed": "0"})).then_some(())
        },
    );
    let b = ours.result("get_request", json!([id_o]));
    assert_ne!(
        b["status"], 3,
        "the reorged payment still counts as paid: {b}"
    );
    // Deleting a request answers null on both; snakkaz-pay keeps the payment (its address
    // stays retired), a documented difference.
    assert_eq!(e.result("delete_request", json!([id_e])), Value::Null);
    assert_eq!(ours.result("delete_request", json!([id_o])), Value::Null);
    assert_eq!(
        e.call("get_request", json!([id_e]))["error"]["message"],
        "Request not found"
    );
    assert_eq!(
        ours.result("get_request", json!([id_o]))["request_id"],
        json!(id_o)
    );
}
