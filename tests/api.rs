//! The HTTP API's contract: authentication, validation, errors, idempotency, TLS to Electrum.

mod common;

use std::time::Duration;

use common::appliance::{ADMIN_TOKEN, API_TOKEN, Appliance, base_env, offline_env};
use common::devnet::Devnet;
use serde_json::{Value, json};

fn err_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn bad_input_gets_its_status_code_and_message() {
    // The API does not need a live Electrum server to validate requests.
    let dir = tempfile::tempdir().unwrap();
    let env = offline_env(dir.path());
    let app = Appliance::start(dir.path(), env);

    let (code, v) = app.request("GET", "/healthz", None, None);
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));

    let (code, v) = app.request("GET", "/api/status", None, None);
    assert_eq!((code, err_code(&v)), (401, "unauthorized"));
    let (code, _) = app.request("GET", "/api/status", Some("wrong-token-wrong-token"), None);
    assert_eq!(code, 401);
    let (code, _) = app.request(
        "POST",
        "/api/admin/restart-payment-processor",
        Some(API_TOKEN),
        None,
    );
    assert_eq!(code, 401, "the API token is not an admin token");

    let post = |body: &[u8]| app.request("POST", "/api/payments", Some(API_TOKEN), Some(body));
    let (code, v) = post(b"{not json");
    assert_eq!((code, err_code(&v)), (400, "invalid_json"));
    for (body, field) in [
        (json!({"amount_sat": 0, "reference": "x"}), "amount_sat"),
        (
            json!({"amount_sat": 2_100_000_000_000_001u64, "reference": "x"}),
            "amount_sat",
        ),
        (json!({"amount_sat": 1.5, "reference": "x"}), "amount_sat"),
        (
            json!({"amount_sat": "1000", "reference": "x"}),
            "amount_sat",
        ),
        (json!({"amount_sat": -5, "reference": "x"}), "amount_sat"),
        (json!({"amount_sat": 1000, "reference": ""}), "reference"),
        (
            json!({"amount_sat": 1000, "reference": "x".repeat(129)}),
            "reference",
        ),
        (
            json!({"amount_sat": 1000, "reference": "a\u{7}b"}),
            "reference",
        ),
        (json!({"amount_sat": 1000, "reference": 5}), "reference"),
        (
            json!({"amount_sat": 1000, "reference": "x", "expires_in_secs": 0}),
            "expires_in_secs",
        ),
    ] {
        let (code, v) = post(body.to_string().as_bytes());
        assert_eq!(
            (code, err_code(&v)),
            (400, "invalid_request"),
            "{body} -> {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{body} -> {v}"
        );
    }
    let (code, v) = post(
        json!({"amount_sat": 1000, "reference": "x", "colour": "red"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        (code, err_code(&v)),
        (400, "invalid_json"),
        "unknown fields are refused: {v}"
    );
    let big = vec![b' '; 65 * 1024];
    let (code, v) = post(&big);
    assert_eq!((code, err_code(&v)), (413, "payload_too_large"));

    // Limits are inclusive.
    let max = app.create_payment(2_100_000_000_000_000, &"m".repeat(128), None);
    assert_eq!(max["amount_sat"], 2_100_000_000_000_000u64);

    // The same reference again returns the same payment with 200, and no new address.
    let first = app.create_payment(5_000, "retry-me", None);
    let (code, again) = app.post(
        "/api/payments",
        &json!({"amount_sat": 5_000, "reference": "retry-me"}),
    );
    assert_eq!(code, 200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["address"], first["address"]);

    let (code, v) = app.get("/api/payments/pay_doesnotexist");
    assert_eq!((code, err_code(&v)), (404, "not_found"));
    let (code, v) = app.get("/api/payments?status=paid");
    assert_eq!((code, err_code(&v)), (400, "invalid_request"));
    let (code, v) = app.get("/api/payments?limit=0");
    assert_eq!((code, err_code(&v)), (400, "invalid_request"));
    let (code, v) = app.request("DELETE", "/api/payments", Some(API_TOKEN), None);
    assert_eq!((code, err_code(&v)), (405, "method_not_allowed"));

    let (code, v) = app.get("/api/payments?limit=1");
    assert_eq!(code, 200);
    assert_eq!(v["payments"].as_array().unwrap().len(), 1);
    let cursor = v["next_cursor"].as_str().unwrap();
    let (_, v2) = app.get(&format!("/api/payments?limit=10&cursor={cursor}"));
    assert_eq!(
        v2["payments"].as_array().unwrap().len(),
        1,
        "two payments in all"
    );

    let (code, v) = app.request(
        "POST",
        "/api/admin/restart-payment-processor",
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!((code, v["restarted"].as_bool()), (200, Some(true)));
}

#[test]
fn tls_with_the_ca_file_works_and_an_untrusted_certificate_is_refused() {
    let devnet = Devnet::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(dir.path(), "localhost", devnet.electrum_tls_port(), true);
    env.push((
        "SNAKKAZ_PAY_ELECTRUM_CA_FILE".into(),
        devnet.ca_file().display().to_string(),
    ));
    let app = Appliance::start(dir.path(), env);
    let s = app.wait_status(Duration::from_secs(20), "TLS connection", |s| {
        s["electrum"]["connected"] == true
    });
    assert_eq!(s["electrum"]["tls"], true);
    let p = app.create_payment(7_000, "tls", None);
    devnet.pay(p["address"].as_str().unwrap(), 7_000);
    app.wait_payment(
        p["id"].as_str().unwrap(),
        Duration::from_secs(3),
        "seen over TLS",
        |v| v["status"] == "unconfirmed",
    );
    drop(app);

    // Without the CA file the same server is untrusted: never connected, error shown.
    let dir2 = tempfile::tempdir().unwrap();
    let env = base_env(dir2.path(), "localhost", devnet.electrum_tls_port(), true);
    let app = Appliance::start(dir2.path(), env);
    let s = app.wait_status(Duration::from_secs(20), "TLS failure reported", |s| {
        s["electrum"]["last_error"].is_string()
    });
    assert_eq!(s["electrum"]["connected"], false);
    let err = s["electrum"]["last_error"].as_str().unwrap();
    assert!(
        err.contains("TLS") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[test]
fn disabled_payments_are_refused_but_the_appliance_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = offline_env(dir.path());
    env.push(("ENABLE_ELECTRUM_PAYMENTS".into(), "false".into()));
    let app = Appliance::start(dir.path(), env);
    let (code, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": "x"}),
    );
    assert_eq!((code, err_code(&v)), (503, "disabled"), "{v}");
    let (code, s) = app.get("/api/status");
    assert_eq!(code, 200);
    assert_eq!(s["payments_enabled"], false);
    assert_eq!(s["electrum"]["connected"], false);
    assert!(
        !s["problems"].to_string().contains("Electrum"),
        "no Electrum problem when payments are off: {s}"
    );
}

#[test]
fn a_reused_reference_is_a_retry_or_a_conflict_and_concurrent_retries_reveal_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let app = Appliance::start(dir.path(), offline_env(dir.path()));
    let first = app.create_payment(10_000, "order-42", Some(600));
    let body = |amount: u64, expires: u64| serde_json::json!({"amount_sat": amount, "reference": "order-42", "expires_in_secs": expires});
    // The same request again: the same payment, 200, no new address.
    let (code, again) = app.post("/api/payments", &body(10_000, 600));
    assert_eq!((code, &again["id"]), (200, &first["id"]));
    // Another amount or expiry under the same reference: 409 naming the field.
    let (code, v) = app.post("/api/payments", &body(20_000, 600));
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("amount_sat"),
        "{v}"
    );
    let (code, v) = app.post("/api/payments", &body(10_000, 900));
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expires_in_secs"),
        "{v}"
    );
    // References that could pass for others are refused.
    for bad in ["order\u{202E}24", " order-7", "order-7 "] {
        let (code, v) = app.post(
            "/api/payments",
            &serde_json::json!({"amount_sat": 1000, "reference": bad}),
        );
        assert_eq!(code, 400, "{bad:?}: {v}");
    }

    // 40 clients retrying one new reference at once: one 201, 39 × 200, one address.
    let before = app.get("/api/status").1["wallet"]["addresses_in_use"]
        .as_u64()
        .unwrap();
    let codes: Vec<(u16, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..40)
            .map(|_| {
                s.spawn(|| {
                    let (code, v) = app.post(
                        "/api/payments",
                        &serde_json::json!({"amount_sat": 5_000, "reference": "burst-1"}),
                    );
                    (code, v["address"].as_str().unwrap_or("").to_owned())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        codes.iter().filter(|(c, _)| *c == 201).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|(c, _)| *c == 200).count(),
        39,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|(_, a)| *a == codes[0].1),
        "one address for all"
    );
    let after = app.get("/api/status").1["wallet"]["addresses_in_use"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1, "exactly one address revealed");
}
