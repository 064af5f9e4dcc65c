//! The status page in a real headless Chromium (Debian's `chromium`), served by an
//! appliance on the devnet: it updates without a reload, shows an open payment with its
//! QR code (for what is still missing) and a paid one without, holds on a 390 px phone,
//! asks for the token when configured to, and escapes what it shows.
//! Screenshots land in `target/screenshots/` for people to look at.

mod common;

use std::time::Duration;

use common::appliance::{API_TOKEN, Appliance, http, offline_env};
use common::browser::Browser;
use serde_json::json;

const UI: Duration = Duration::from_secs(10);

fn row_status(id: &str) -> String {
    format!("document.querySelector('tr[data-payment=\"{id}\"]')?.dataset.status ?? null")
}

/// True when nothing on the page is wider than the window (no sideways scrolling).
const FITS: &str = "document.documentElement.scrollWidth <= window.innerWidth + 1 \
    && [...document.querySelectorAll('.scroll')].every(s => s.scrollWidth <= s.clientWidth + 1)";

fn phone(b: &mut Browser) {
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
}

#[test]
fn page_follows_a_payment_without_reload_and_shows_it_paid() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();

    let base = format!("http://{}", app.addr);
    let mut b = Browser::open(&format!("{base}/"), 1280, 900);
    b.wait_for(
        "document.querySelector('#electrum')?.dataset.connected === 'true'",
        UI,
        "the overview with Electrum connected",
    );
    // A marker that only survives if the page is never reloaded.
    b.eval("window.__noReload = 'still here'");

    let p = app.create_payment(60_000, "page-order-1", None);
    let id = p["id"].as_str().unwrap().to_owned();
    b.wait_for(
        &format!("{} === 'pending'", row_status(&id)),
        UI,
        "the new payment as pending",
    );
    b.screenshot("overview-pending");

    devnet.pay(p["address"].as_str().unwrap(), 60_000);
    b.wait_for(
        &format!("{} === 'unconfirmed'", row_status(&id)),
        UI,
        "the payment as unconfirmed",
    );
    devnet.mine(2);
    b.wait_for(
        &format!("{} === 'confirmed'", row_status(&id)),
        UI,
        "the payment as confirmed",
    );
    assert_eq!(
        b.eval("window.__noReload"),
        "still here",
        "the page changed without a reload"
    );
    // The status counts and the list are read one after the other: wait for the next refresh.
    b.wait_for(
        "document.querySelector('text.value[data-status=\"confirmed\"]')?.textContent === '1'",
        UI,
        "the chart counting the confirmed payment",
    );
    b.screenshot("overview-confirmed");
    // The README's pictures (docs/*.png are copies of these).
    b.screenshot_top("docs-overview-desktop", 1280, 1100, 0.7);
    // The last-day chart counts the payment, created and paid, and one detection at least.
    b.wait_for(
        "(d => d && d.created === '1' && d.paid === '1' && Number(d.detections) >= 1)(document.querySelector('#day-chart')?.dataset)",
        UI,
        "the last-day chart with the payment",
    );
    // Times show the browser's local clock next to UTC.
    assert_eq!(
        b.eval(
            "document.querySelector('#recent time .local')?.textContent.endsWith(' local') ?? false"
        ),
        true
    );
    phone(&mut b);
    b.wait_for(FITS, UI, "the overview fitting a 390 px phone");
    // The server address wraps between host and port, never inside the port number.
    assert_eq!(
        b.eval("document.querySelector('#electrum .port').getClientRects().length"),
        1
    );
    b.screenshot("overview-phone");
    b.call("Emulation.clearDeviceMetricsOverride", json!({}));

    // Follow the link to the payment's own page.
    b.eval(&format!(
        "document.querySelector('tr[data-payment=\"{id}\"] a').click()"
    ));
    b.wait_for(
        "document.querySelector('#payment')?.dataset.status === 'confirmed'",
        UI,
        "the payment page",
    );
    assert_eq!(b.eval("location.pathname"), format!("/payments/{id}"));
    // Paid: no QR code or wallet link inviting a second payment, a plain "Paid" instead.
    assert_eq!(
        b.eval("[!!document.querySelector('#qr'), !!document.querySelector('a[href^=\"bitcoin:\"]'), document.querySelector('#paid strong')?.textContent]"),
        json!([false, false, "Paid"])
    );
    let (_, api) = app.get(&format!("/api/payments/{id}"));
    let history =
        b.eval("[...document.querySelectorAll('#history tr[data-to]')].map(r => r.dataset.to)");
    let api_history: Vec<_> = api["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].clone())
        .collect();
    assert_eq!(
        history,
        json!(api_history),
        "the page shows the whole history"
    );
    assert_eq!(history[history.as_array().unwrap().len() - 1], "confirmed");
    b.screenshot("payment-paid-desktop");
    phone(&mut b);
    b.wait_for(FITS, UI, "the paid payment fitting a 390 px phone");
    b.screenshot("payment-paid-phone");
}

/// Regression: after a partial payment the QR code and "Open in wallet" still asked for
/// the whole amount, inviting the payer to pay it all again.
#[test]
fn a_partial_payment_asks_for_the_rest_on_a_phone() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    let (code, p) = app.post(
        "/api/payments",
        &json!({"amount_sat": 100_000, "reference": "page-partial", "description": "Snakkaz Pro, one year"}),
    );
    assert_eq!(code, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let address = p["address"].as_str().unwrap().to_owned();
    devnet.pay(&address, 40_000);
    app.wait_payment(&id, Duration::from_secs(10), "the partial payment", |v| {
        v["received_sat"] == 40_000
    });
    let (_, api) = app.get(&format!("/api/payments/{id}"));
    let bip21 = api["bip21"].as_str().unwrap();
    assert!(
        bip21.starts_with(&format!("bitcoin:{address}?amount=0.0006&")),
        "the API's BIP21 asks for the 60,000 sat still missing: {bip21}"
    );

    let mut b = Browser::open(&format!("http://{}/payments/{id}", app.addr), 390, 844);
    phone(&mut b);
    b.wait_for(
        "document.querySelector('#qr')?.dataset.askSat === '60000'",
        UI,
        "the QR code for the rest",
    );
    assert_eq!(
        b.eval("document.querySelector('#qr a').getAttribute('href')"),
        bip21,
        "the page's link is the API's BIP21 URI"
    );
    let qr = b.eval("(() => { const s = document.querySelector('#qr svg'); return s ? [s.getBoundingClientRect().width, s.querySelectorAll('path').length] : null })()");
    assert!(
        qr[0].as_f64() >= Some(200.0) && qr[1].as_u64() >= Some(1),
        "QR code drawn: {qr}"
    );
    assert!(
        b.eval("document.querySelector('#qr figcaption').textContent")
            .as_str()
            .unwrap()
            .contains("Still to pay: 60,000 sat")
    );
    b.wait_for(FITS, UI, "the payment fitting a 390 px phone");
    b.screenshot("payment-partial-phone");
    b.screenshot_top("docs-payment-phone", 390, 760, 0.5);

    // The rest arrives: the QR code goes, "Paid" comes, without a reload.
    devnet.pay(&address, 60_000);
    b.wait_for(
        "document.querySelector('#paid') && !document.querySelector('#qr')",
        UI,
        "the payment shown paid",
    );
    b.wait_for(FITS, UI, "the paid payment fitting a 390 px phone");
}

/// A completed payment whose money left the chain (double spend after delivery) is a
/// problem on the page, not a healthy "Paid".
#[test]
fn a_completed_payment_that_lost_its_money_is_shown_as_a_problem() {
    let (devnet, _dir, app) = Appliance::on_fresh_devnet();
    let p = app.create_payment(45_000, "page-delivered", None);
    let id = p["id"].as_str().unwrap().to_owned();
    let txid = devnet.pay(p["address"].as_str().unwrap(), 45_000);
    devnet.mine(2);
    app.wait_payment(&id, Duration::from_secs(10), "confirmed", |v| {
        v["status"] == "confirmed"
    });
    let (code, _) = app.post(&format!("/api/payments/{id}/complete"), &json!({}));
    assert_eq!(code, 200);
    devnet.reorg(2, &[txid.as_str()]);
    app.wait_payment(&id, Duration::from_secs(20), "the loss", |v| {
        v["flags"].to_string().contains("money_lost")
    });

    let mut b = Browser::open(&format!("http://{}/", app.addr), 1280, 900);
    b.wait_for(
        &format!(
            "document.querySelector('#health')?.dataset.healthy === 'false' \
             && document.querySelector('tr[data-payment=\"{id}\"]')?.classList.contains('problem')"
        ),
        UI,
        "the overview degraded, the payment's row marked as a problem",
    );
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('tr[data-payment=\"{id}\"] [data-flag=money_lost]').textContent"
        )),
        "money lost"
    );
    b.goto(&format!("http://{}/payments/{id}", app.addr));
    b.wait_for(
        "document.querySelector('#money-lost') && document.querySelector('#lost')",
        UI,
        "the payment page naming the loss",
    );
    assert_eq!(
        b.eval("[!!document.querySelector('#paid'), !!document.querySelector('#qr')]"),
        json!([false, false]),
        "neither 'Paid' nor a QR code"
    );
    b.screenshot("payment-money-lost");
}

#[test]
fn page_asks_for_the_token_and_escapes_what_it_shows() {
    // No Electrum server is needed to look at the page.
    let dir = tempfile::tempdir().unwrap();
    let mut env = offline_env(dir.path());
    env.push(("SNAKKAZ_PAY_PAGE_AUTH".into(), "token".into()));
    let app = Appliance::start(dir.path(), env);
    let hostile = "<img src=x onerror=\"window.__pwned=1\">&amp;";
    let (code, v) = app.post(
        "/api/payments",
        &json!({"amount_sat": 1000, "reference": hostile}),
    );
    assert_eq!(code, 201, "{v}");

    // The shell is served without data; its fragments and the metrics need the token.
    let (code, shell) = http(&app.addr, "GET", "/", None, None);
    let shell = String::from_utf8(shell).unwrap();
    assert_eq!(code, 200);
    assert!(
        !shell.contains("page-order") && !shell.contains("onerror"),
        "{shell}"
    );
    for path in ["/page/overview", "/api/metrics/bitcoin"] {
        assert_eq!(http(&app.addr, "GET", path, None, None).0, 401, "{path}");
        assert_eq!(
            http(&app.addr, "GET", path, Some(API_TOKEN), None).0,
            200,
            "{path}"
        );
    }

    let base = format!("http://{}", app.addr);
    let mut b = Browser::open(&format!("{base}/"), 1280, 900);
    b.wait_for(
        "!document.querySelector('#login').hidden",
        UI,
        "the token form",
    );
    b.screenshot("login");
    let submit = |b: &mut Browser, token: &str| {
        b.eval(&format!(
            "document.querySelector('#token').value = {}; document.querySelector('#login').requestSubmit()",
            json!(token)
        ));
    };
    submit(&mut b, "not-the-token-at-all");
    b.wait_for(
        "document.querySelector('#login-error').textContent",
        UI,
        "the wrong token refused",
    );
    submit(&mut b, API_TOKEN);
    b.wait_for(
        "document.querySelector('#health')",
        UI,
        "the overview after login",
    );
    assert_eq!(
        b.eval("document.querySelector('#token').value"),
        "",
        "token not kept in the form"
    );
    assert_eq!(
        b.eval(&format!(
            "document.documentElement.outerHTML.includes({})",
            json!(API_TOKEN)
        )),
        false,
        "the token is not in the page"
    );
    // The hostile reference shows as text; nothing of it runs or becomes an element.
    let shown = b.eval("document.querySelector('#recent tbody a').textContent");
    assert_eq!(shown, hostile);
    assert_eq!(
        b.eval("document.querySelectorAll('img[src=\"x\"]').length"),
        0
    );
    assert_eq!(b.eval("window.__pwned ?? null"), serde_json::Value::Null);
    // The page keeps refreshing with the token from sessionStorage.
    let before = b
        .eval("Number(document.body.dataset.refreshes)")
        .as_u64()
        .unwrap();
    b.wait_for(
        &format!("Number(document.body.dataset.refreshes) > {before}"),
        UI,
        "a refresh with the stored token",
    );
    b.screenshot("overview-token-degraded");
}
