//! HTML fragments of the status page. Every value from the store, the chain or the
//! configuration goes through [`escape`]; the only raw markup is our own and the QR SVG.

use std::fmt::Write as _;

use http::StatusCode;

use crate::alerts::Alert;
use crate::app::{App, AppError, StatusReport};
use crate::clock::rfc3339;
use crate::metrics::Timings;
use crate::payments::display::{Sat, flag_words};
use crate::payments::{Event, Payment, Status};
use crate::store::ListQuery;
use crate::web::json::payment_bip21;

/// Payments listed on the overview.
const RECENT: usize = 15;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The overview fragment: health, alerts, Electrum, wallet, payments, timings, recent payments.
pub(super) fn overview(app: &App) -> String {
    let a = crate::alerts::assess(app);
    let s = match a.status {
        Ok(s) => s,
        Err(e) => {
            return format!(
                "<section class=\"card bad\" id=health data-healthy=false><h2>Status unavailable</h2><p>{}</p></section>",
                escape(&e.to_string())
            );
        }
    };
    let recent = app.list_payments(&ListQuery {
        limit: RECENT,
        ..Default::default()
    });
    let mut h = String::new();
    lockdown_banner(&mut h, a.security.lockdown.as_ref());
    health(&mut h, &s);
    alerts(&mut h, &a.alerts);
    failed_logins(&mut h, app);
    receipts(&mut h, app);
    h.push_str("<div class=grid>");
    electrum(&mut h, &s);
    wallet(&mut h, &s);
    system(&mut h, &s);
    counts(&mut h, &s);
    timings(&mut h, &app.metrics.timings(), &s);
    last_day(&mut h, app);
    h.push_str("</div>");
    match recent {
        Ok((ps, _)) => recent_table(&mut h, &ps, app.cfg.min_confirmations),
        Err(e) => {
            let _ = write!(
                h,
                "<p class=bad>payments unavailable: {}</p>",
                escape(&e.to_string())
            );
        }
    }
    h
}

/// Failed logins shown on the overview, from the last day.
const RECENT_FAILED_LOGINS: usize = 5;

/// Payments read for the last-day chart at most (the newest; a bounded read per refresh).
const CHART_PAYMENTS: usize = crate::app::MAX_PAGE;

fn last_day(h: &mut String, app: &App) {
    let now = crate::clock::now();
    h.push_str("<section class=card id=last-day><h2>Last 24 hours</h2>");
    match app.list_payments(&ListQuery {
        limit: CHART_PAYMENTS,
        ..Default::default()
    }) {
        Ok((ps, next)) => {
            let day_start = now.saturating_sub(24 * 3600);
            // Newest first: capped only when the oldest read is still inside the day.
            let capped = next.is_some() && ps.last().is_some_and(|p| p.created_at >= day_start);
            let per_hour = super::chart::per_hour(&ps, now);
            h.push_str(&super::chart::svg(
                &per_hour,
                &app.metrics.detection_last_day(),
                capped,
            ));
        }
        Err(e) => {
            let _ = write!(
                h,
                "<p class=bad>chart unavailable: {}</p>",
                escape(&e.to_string())
            );
        }
    }
    h.push_str("</section>");
}

fn lockdown_banner(h: &mut String, rec: Option<&crate::store::LockdownRecord>) {
    let Some(r) = rec else { return };
    let _ = write!(
        h,
        "<section class=\"card banner bad lockdown\" id=lockdown data-locked=true><h1>Locked down</h1>\
         <p>Since {since} by {source}: {reason}</p>\
         <p>New payments, admin actions and spending are refused; open payments are still watched and recorded. \
         Lift it on the box with <code>snakkaz-pay unlock</code>.</p></section>",
        since = time(r.since),
        source = escape(&r.source),
        reason = escape(&r.reason),
    );
}

fn failed_logins(h: &mut String, app: &App) {
    let since = crate::clock::now().saturating_sub(86_400);
    let recent = app.store.audit_since(since, RECENT_FAILED_LOGINS, |e| {
        e.action == crate::access::AUTH_FAILED
    });
    let Ok(recent) = recent else {
        h.push_str("<p class=bad>failed logins unavailable: the audit log cannot be read</p>");
        return;
    };
    let _ = write!(
        h,
        "<section class=card id=failed-logins data-count={}><h2>Failed logins (24 h)</h2>",
        recent.len()
    );
    if recent.is_empty() {
        h.push_str("<p class=muted>No failed logins in the last 24 hours.</p>");
    } else {
        h.push_str("<ul>");
        for e in &recent {
            let _ = write!(
                h,
                "<li><span class=muted>{at}</span> <strong>{source}</strong> {detail}</li>",
                at = time(e.at),
                source = escape(&e.source),
                detail = escape(&e.detail),
            );
        }
        h.push_str("</ul><p class=muted>All of them: <code>snakkaz-pay audit --action auth.failed</code></p>");
    }
    h.push_str("</section>");
}

/// Receipts listed on the overview.
const RECENT_RECEIPTS: usize = 10;

/// Unattributed receipts, shown only when there are some.
fn receipts(h: &mut String, app: &App) {
    let Ok(list) = app.receipts() else {
        h.push_str("<p class=bad>receipts unavailable: the database cannot be read</p>");
        return;
    };
    if list.is_empty() {
        return;
    }
    let open = list.iter().filter(|r| r.open()).count();
    let _ = write!(
        h,
        "<section class=\"card{}\" id=receipts data-open={open}><h2>Unattributed receipts</h2>\
         <p>Money that reached the wallet and that no open payment counts. Assign each with \
         <code>snakkaz-pay receipts assign TXID:VOUT PAYMENT_ID</code>.</p>\
         <div class=scroll><table class=cards><thead><tr><th>Outpoint</th><th>Amount</th><th>State</th><th>Why</th><th>Seen</th></tr></thead><tbody>",
        if open > 0 { " warn" } else { "" }
    );
    for r in list.iter().take(RECENT_RECEIPTS) {
        let _ = write!(
            h,
            "<tr data-outpoint=\"{op}\"><td data-label=Outpoint><code>{op}</code></td><td data-label=Amount>{amount}</td>\
             <td data-label=State>{state}{to}</td><td data-label=Why>{why}</td><td data-label=Seen>{seen}</td></tr>",
            op = escape(&r.outpoint),
            amount = amount(r.amount_sat),
            state = r.state(),
            to = r
                .assigned_to
                .as_deref()
                .map(|p| format!(" → {}", escape(p)))
                .unwrap_or_default(),
            why = escape(r.cause.describe()),
            seen = time(r.first_seen_at),
        );
    }
    h.push_str("</tbody></table></div></section>");
}

fn health(h: &mut String, s: &StatusReport) {
    let (class, word) = if s.healthy {
        ("ok", "Healthy")
    } else {
        ("bad", "Degraded")
    };
    let _ = write!(
        h,
        "<section class=\"card banner {class}\" id=health data-healthy={healthy}><h1>{word}</h1>\
         <p>{network} · payments {enabled} · up {uptime}</p>",
        healthy = s.healthy,
        network = escape(&s.network),
        enabled = if s.payments_enabled {
            "enabled"
        } else {
            "disabled"
        },
        uptime = duration(s.uptime_secs),
    );
    if !s.problems.is_empty() {
        h.push_str("<ul class=problems>");
        for p in &s.problems {
            let _ = write!(h, "<li>{}</li>", escape(p));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

fn alerts(h: &mut String, alerts: &[Alert]) {
    let _ = write!(
        h,
        "<section class=card id=alerts data-count={}><h2>Alerts</h2>",
        alerts.len()
    );
    if alerts.is_empty() {
        h.push_str("<p class=muted>No active alerts.</p>");
    } else {
        h.push_str("<ul>");
        for a in alerts {
            let _ = write!(
                h,
                "<li class=\"alert {sev}\" data-alert=\"{name}\"><strong>{name}</strong> <span class=badge>{sev}</span> {summary}</li>",
                sev = escape(a.severity),
                name = escape(a.name),
                summary = escape(&a.summary),
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

fn row(h: &mut String, label: &str, value: &str) {
    let _ = write!(h, "<dt>{}</dt><dd>{value}</dd>", escape(label));
}

fn electrum(h: &mut String, s: &StatusReport) {
    let e = &s.electrum;
    let _ = write!(
        h,
        "<section class=card id=electrum data-connected={}><h2>Electrum</h2><dl>",
        e.connected
    );
    row(
        h,
        "Connection",
        if e.connected {
            "<span class=ok>connected</span>"
        } else {
            "<span class=bad>disconnected</span>"
        },
    );
    row(h, "Server", &server(e.server.as_deref()));
    row(h, "Protocol", if e.tls { "TLS" } else { "TCP (no TLS)" });
    row(h, "Tip height", &opt(e.tip_height));
    row(
        h,
        "Last notification",
        &e.secs_since_last_notification
            .map_or("–".into(), |s| format!("{} ago", duration(s))),
    );
    row(h, "Failovers / reconnects", &e.reconnects.to_string());
    row(
        h,
        "Last sync",
        &e.last_sync_ms.map_or("–".into(), |ms| format!("{ms} ms")),
    );
    if let Some(err) = &e.last_error {
        row(
            h,
            "Last error",
            &format!("<span class=bad>{}</span>", escape(err)),
        );
    }
    h.push_str("</dl></section>");
}

fn wallet(h: &mut String, s: &StatusReport) {
    let w = &s.wallet;
    h.push_str("<section class=card id=wallet><h2>Wallet</h2><dl>");
    row(h, "Confirmed", &amount(w.confirmed_sat));
    row(h, "Unconfirmed", &amount(w.unconfirmed_sat));
    row(h, "Addresses in use", &w.addresses_in_use.to_string());
    row(h, "Wallet tip", &w.tip_height.to_string());
    let sink = &s.sink;
    if sink.enabled {
        row(
            h,
            "Supabase sink",
            &format!(
                "{} · {} waiting",
                if sink.connected {
                    "<span class=ok>connected</span>"
                } else {
                    "<span class=bad>not connected</span>"
                },
                s.outbox.pending
            ),
        );
    }
    let bv = &s.backup_verification;
    let verified = match (bv.ok, bv.age_secs) {
        (Some(ok), Some(age)) => format!(
            "<span class={}>{}</span> {} ago",
            if bv.problem.is_some() { "bad" } else { "ok" },
            if ok { "passed" } else { "FAILED" },
            duration(age)
        ),
        _ => "never (snakkaz-pay verify-backup)".into(),
    };
    row(h, "Backup verified", &verified);
    let rc = &s.reconcile;
    let reconciled = match (rc.age_secs, rc.differences, rc.unfixed) {
        (Some(age), Some(found), Some(unfixed)) => format!(
            "<span class={}>{found} difference(s), {unfixed} not fixed</span> {} ago{}",
            if unfixed > 0 || rc.sink_error.is_some() {
                "bad"
            } else {
                "ok"
            },
            duration(age),
            if rc.sink_error.is_some() {
                " · Supabase not compared"
            } else {
                ""
            }
        ),
        _ => "never (snakkaz-pay reconcile)".into(),
    };
    row(h, "Reconciled", &reconciled);
    h.push_str("</dl></section>");
}

/// The running version and root slot, the last update and the database's last
/// migration or rollback.
fn system(h: &mut String, s: &StatusReport) {
    let u = &s.update;
    let outcome = u.last_outcome.unwrap_or("none");
    let _ = write!(
        h,
        "<section class=card id=system data-outcome={outcome}><h2>System</h2><dl>"
    );
    row(h, "Version", &escape(u.binary_version));
    if let (Some(v), Some(slot)) = (&u.image_version, u.slot) {
        row(h, "Image", &format!("{} · root slot {slot}", escape(v)));
    }
    if let Some(summary) = &u.summary {
        let class = match outcome {
            "failed_fell_back" => "bad",
            "good" => "ok",
            _ => "muted",
        };
        let since = u
            .outcome_since
            .as_deref()
            .map(|t| format!(" <span class=muted>since {}</span>", escape(t)))
            .unwrap_or_default();
        row(
            h,
            "Last update",
            &format!(
                "<span class={class} id=last-update>{}</span>{since}",
                escape(summary)
            ),
        );
    }
    if let Some(n) = &u.database {
        row(
            h,
            "Database",
            &format!(
                "<span class={} id=database-notice>{}</span> {}",
                if n.lost { "bad" } else { "ok" },
                escape(&n.kind.replace('_', " ")),
                time(n.at)
            ),
        );
    }
    h.push_str("</dl></section>");
}

/// Payments by status, with a bar chart drawn as inline SVG (no style attributes: strict CSP).
fn counts(h: &mut String, s: &StatusReport) {
    let max = s.payments.values().copied().max().unwrap_or(0).max(1);
    h.push_str("<section class=card id=counts><h2>Payments by status</h2><svg class=chart viewBox=\"0 0 300 150\" role=img aria-label=\"payments by status\">");
    for (i, st) in Status::ALL.iter().enumerate() {
        let n = s.payments.get(st.as_str()).copied().unwrap_or(0);
        let y = i * 25;
        let w = (n * 170 / max).max(u64::from(n > 0));
        let _ = write!(
            h,
            "<text x=0 y={ty} class=label>{name}</text><rect x=90 y={y} width={w} height=18 class=\"bar {name}\"/>\
             <text x={tx} y={ty} class=value data-status=\"{name}\">{n}</text>",
            ty = y + 14,
            tx = 96 + w,
            name = st.as_str(),
        );
    }
    h.push_str("</svg></section>");
}

fn timings(h: &mut String, t: &Timings, s: &StatusReport) {
    h.push_str("<section class=card id=timings><h2>Processing</h2><dl>");
    row(
        h,
        "Notification → update",
        &t.mean_update_secs.map_or("–".into(), |m| {
            format!("{:.0} ms mean over {}", m * 1000.0, t.updates)
        }),
    );
    row(
        h,
        "Seen → confirmed",
        &t.mean_confirmation_secs.map_or("–".into(), |m| {
            format!("{} mean over {}", duration(m as u64), t.confirmations)
        }),
    );
    let done = ["confirmed", "completed"]
        .iter()
        .map(|k| s.payments.get(*k).copied().unwrap_or(0))
        .sum::<u64>();
    let failed = ["expired", "underpaid"]
        .iter()
        .map(|k| s.payments.get(*k).copied().unwrap_or(0))
        .sum::<u64>();
    row(
        h,
        "Success rate",
        &(done * 100)
            .checked_div(done + failed)
            .map_or("–".to_owned(), |pct| {
                format!("{pct} % of {}", done + failed)
            }),
    );
    h.push_str("</dl></section>");
}

fn recent_table(h: &mut String, ps: &[Payment], min_conf: u32) {
    h.push_str(
        "<section class=card id=recent><h2>Recent payments</h2><div class=scroll><table class=cards>\
         <thead><tr><th>Payment</th><th>Status</th><th class=num>Amount</th><th class=num>Received</th>\
         <th class=num>Conf.</th><th>Created</th><th>Seen → confirmed</th></tr></thead><tbody>",
    );
    if ps.is_empty() {
        h.push_str("<tr><td colspan=7 class=muted>No payments yet.</td></tr>");
    }
    for p in ps {
        let _ = write!(
            h,
            "<tr data-payment=\"{id}\" data-status=\"{status}\"{problem}><td data-label=Payment><a href=\"/payments/{id}\">{reference}</a></td>\
             <td data-label=Status><span class=\"badge {status}\">{status}</span>{flags}</td><td class=num data-label=Amount>{amount}</td>\
             <td class=num data-label=Received>{received}</td><td class=num data-label=Conf.>{conf}/{min_conf}</td>\
             <td data-label=Created>{created}</td><td data-label=\"Seen → confirmed\">{took}</td></tr>",
            id = escape(&p.id),
            reference = escape(&p.reference),
            status = p.status.as_str(),
            problem = if p.flags.money_lost {
                " class=problem"
            } else {
                ""
            },
            flags = flags(p),
            amount = amount(p.amount_sat),
            received = amount(p.received_sat),
            conf = p.confirmations,
            created = time(p.created_at),
            took = match (p.first_seen_at, p.confirmed_at) {
                (Some(a), Some(b)) => duration(b.saturating_sub(a)),
                _ => "–".into(),
            },
        );
    }
    h.push_str("</tbody></table></div></section>");
}

fn flags(p: &Payment) -> String {
    p.flags
        .names()
        .iter()
        .map(|f| {
            // A loss is a problem, not a remark: red, like a failed payment.
            let class = if *f == crate::payments::FLAG_MONEY_LOST {
                "badge flag critical"
            } else {
                "badge flag"
            };
            format!(
                " <span class=\"{class}\" data-flag=\"{f}\">{}</span>",
                escape(&flag_words(f))
            )
        })
        .collect()
}

/// One payment: its request with the QR code, its figures and its history.
pub(super) fn payment(app: &App, id: &str) -> Result<String, (StatusCode, String)> {
    let (p, events) = app.payment(id).map_err(|e| match e {
        AppError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            format!(
                "<section class=\"card bad\" id=missing><h1>No such payment</h1><p>{}</p><p><a href=\"/\">Back to the overview</a></p></section>",
                escape(&e.to_string())
            ),
        ),
        e => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "<section class=\"card bad\"><h1>Payment unavailable</h1><p>{}</p></section>",
                escape(&e.to_string())
            ),
        ),
    })?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<p><a href=\"/\">← Overview</a></p><section class=\"card payment\" id=payment data-payment=\"{id}\" data-status=\"{status}\">\
         <h1>{reference} <span class=\"badge {status}\">{status}</span>{flags}</h1>",
        id = escape(&p.id),
        status = p.status.as_str(),
        reference = escape(&p.reference),
        flags = flags(&p),
    );
    if p.flags.money_lost {
        h.push_str(
            "<p class=\"problem-note bad\" id=money-lost><strong>Problem: this payment's money left the chain \
             after it was confirmed</strong> (double spend or reorg). Check what was delivered for it, then \
             acknowledge the loss (<code>POST /api/admin/payments/ID/acknowledge-loss</code>).</p>",
        );
    }
    h.push_str("<div class=pay>");
    pay_box(&mut h, &p);
    h.push_str("<dl>");
    row(&mut h, "Amount", &amount_long(p.amount_sat));
    let received = match p.received_sat.cmp(&p.amount_sat) {
        std::cmp::Ordering::Less if p.received_sat > 0 => format!(
            "{} <span class=muted>({} missing)</span>",
            amount(p.received_sat),
            Sat(p.amount_sat - p.received_sat)
        ),
        std::cmp::Ordering::Greater => format!(
            "{} <span class=muted>({} more than asked)</span>",
            amount(p.received_sat),
            Sat(p.received_sat - p.amount_sat)
        ),
        _ => amount(p.received_sat),
    };
    row(&mut h, "Received", &received);
    row(
        &mut h,
        "Confirmations",
        &format!("{} of {}", p.confirmations, app.cfg.min_confirmations),
    );
    row(
        &mut h,
        "Address",
        &format!("<code class=addr>{}</code>", escape(&p.address)),
    );
    if let Some(d) = &p.description {
        row(&mut h, "Description", &escape(d));
    }
    row(&mut h, "Created", &time(p.created_at));
    row(&mut h, "Expires", &time(p.expires_at));
    row(
        &mut h,
        "First seen",
        &p.first_seen_at.map_or("–".into(), time),
    );
    row(
        &mut h,
        "Confirmed",
        &p.confirmed_at.map_or("–".into(), time),
    );
    let txids: Vec<String> = p
        .txids
        .iter()
        .map(|t| format!("<code>{}</code>", escape(t)))
        .collect();
    row(
        &mut h,
        "Transactions",
        &if txids.is_empty() {
            "–".to_owned()
        } else {
            txids.join("<br>")
        },
    );
    for f in crate::spend::facts::of_payment(app, &p).unwrap_or_default() {
        row(&mut h, "Fee (unconfirmed)", &fee_facts(&f));
    }
    let _ = write!(
        h,
        "<dt>Payment id</dt><dd><code>{}</code></dd>",
        escape(&p.id)
    );
    h.push_str("</dl></div></section>");
    history(&mut h, &events);
    Ok(h)
}

fn history(h: &mut String, events: &[Event]) {
    h.push_str(
        "<section class=card id=history><h2>History</h2><div class=scroll><table class=cards><thead><tr>\
         <th>Time</th><th>From</th><th>To</th><th>Reason</th></tr></thead><tbody>",
    );
    for e in events {
        let _ = write!(
            h,
            "<tr data-to=\"{to}\"><td data-label=Time>{at}</td><td data-label=From>{from}</td>\
             <td data-label=To><span class=\"badge {to}\">{to}</span></td><td data-label=Reason>{reason}{txids}</td></tr>",
            at = time(e.at),
            from = e.from.map_or("new", |s| s.as_str()),
            to = e.to.as_str(),
            reason = escape(&e.reason),
            txids = e
                .txids
                .iter()
                .map(|t| format!("<br><code>{}</code>", escape(t)))
                .collect::<String>(),
        );
    }
    h.push_str("</tbody></table></div></section>");
}

/// The BIP21 URI as a QR code in SVG (upper-case-safe byte mode, medium error correction).
pub(crate) fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build();
            // Inline SVG needs no XML declaration.
            match svg.find("<svg") {
                Some(i) => svg[i..].to_owned(),
                None => svg,
            }
        }
        Err(e) => format!("<p class=bad>no QR code: {}</p>", escape(&e.to_string())),
    }
}

/// What the payer is offered: the QR code while money is wanted (for what is still
/// missing), a plain "paid" once it arrived, a warning not to pay once it expired.
fn pay_box(h: &mut String, p: &Payment) {
    if p.flags.money_lost {
        let _ = write!(
            h,
            "<div class=\"closedbox bad\" id=lost><strong>Money lost</strong><span>{} of {} still on the chain</span></div>",
            amount(p.received_sat),
            amount(p.amount_sat)
        );
        return;
    }
    if p.is_paid() {
        let _ = write!(
            h,
            "<div class=\"paidbox ok\" id=paid><strong>Paid</strong><span>{} received{}</span></div>",
            amount(p.received_sat),
            if p.status == Status::Unconfirmed {
                ", waiting for confirmations"
            } else {
                ""
            }
        );
        return;
    }
    if p.status != Status::Pending {
        let _ = write!(
            h,
            "<div class=\"closedbox bad\" id=closed><strong>{}</strong><span>Do not pay this request; make a new one.</span></div>",
            if p.status == Status::Expired {
                "Expired"
            } else {
                "Underpaid and expired"
            }
        );
        return;
    }
    let uri = payment_bip21(p);
    let remaining = p.remaining_sat();
    let _ = write!(
        h,
        "<figure class=qr id=qr data-ask-sat={ask}>{qr}<figcaption>{what}<br><a href=\"{uri}\">Open in wallet</a></figcaption></figure>",
        ask = remaining,
        qr = qr_svg(&uri),
        what = if p.received_sat > 0 {
            format!("Still to pay: <strong>{}</strong>", Sat(remaining))
        } else {
            format!("Pay <strong>{}</strong>", Sat(remaining))
        },
        uri = escape(&uri),
    );
}

/// An amount as people read it; the API has the integer satoshis.
fn amount(sat: u64) -> String {
    Sat(sat).to_string()
}

/// An amount in satoshis and in BTC.
fn amount_long(sat: u64) -> String {
    format!("{} <span class=muted>({:#})</span>", Sat(sat), Sat(sat))
}

/// A time in UTC; the page's script adds the browser's local time next to it.
fn time(secs: u64) -> String {
    let utc = rfc3339(secs);
    let shown = utc.replacen('T', " ", 1).replace('Z', " UTC");
    format!("<time datetime=\"{utc}\">{shown}</time>")
}

/// An Electrum server URL that may wrap only between scheme, host and port, never
/// inside the port number.
fn server(url: Option<&str>) -> String {
    let Some(url) = url else {
        return "–".into();
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
    let mut out = String::from("<span class=server>");
    if !scheme.is_empty() {
        let _ = write!(out, "{}://<wbr>", escape(scheme));
    }
    out.push_str(&escape(host));
    if !port.is_empty() {
        let _ = write!(out, "<wbr><span class=port>:{}</span>", escape(port));
    }
    out.push_str("</span>");
    out
}

fn opt(v: Option<u32>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// One unconfirmed transaction's fee facts, unknowns named as such.
fn fee_facts(f: &crate::spend::facts::FeeFacts) -> String {
    let unknown = |what: &str| {
        format!(
            "<span class=muted>{what} unknown ({})</span>",
            escape(&f.lookup)
        )
    };
    let fee = match (&f.fee_sat, &f.fee_rate_sat_vb) {
        (Some(fee), Some(r)) => format!("{} at {} sat/vB", Sat(*fee), escape(r)),
        _ => unknown("fee"),
    };
    let parents = match &f.unconfirmed_parents {
        Some(ps) if ps.is_empty() => "no unconfirmed parents".to_owned(),
        Some(ps) => format!(
            "{} unconfirmed parent(s): {}",
            ps.len(),
            ps.iter()
                .map(|p| format!(
                    "<code>{}</code> at {} sat/vB",
                    escape(&p.txid),
                    escape(p.fee_rate_sat_vb.as_deref().unwrap_or("unknown"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => unknown("unconfirmed parents"),
    };
    let package = f.package_fee_rate_sat_vb.as_deref().map_or_else(
        || unknown("package rate"),
        |r| format!("package {} sat/vB", escape(r)),
    );
    format!(
        "<span class=fee-facts data-txid=\"{}\">{fee}; {} vB; {}; {parents}; {package}</span>",
        escape(&f.txid),
        f.vsize,
        if f.rbf {
            "signals RBF (replaceable)"
        } else {
            "no RBF signal"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn qr_code_is_inline_svg() {
        let svg = qr_svg("bitcoin:bcrt1qxyz?amount=0.0005");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(
            !svg.contains("style="),
            "a strict CSP blocks style attributes"
        );
    }

    #[test]
    fn servers_wrap_between_parts_never_inside_the_port() {
        assert_eq!(
            server(Some("tcp://127.0.0.1:50001")),
            "<span class=server>tcp://<wbr>127.0.0.1<wbr><span class=port>:50001</span></span>"
        );
        assert_eq!(server(None), "–");
    }

    #[test]
    fn times_carry_their_utc_instant_for_the_local_clock() {
        assert_eq!(
            time(0),
            "<time datetime=\"1970-01-01T00:00:00Z\">1970-01-01 00:00:00 UTC</time>"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(10_800), "3 h");
        assert_eq!(duration(259_200), "3 d");
    }
}
