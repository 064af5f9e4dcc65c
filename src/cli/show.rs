//! The human form of what the daemon answers (`status`, `payment ...`): pure functions
//! from the API's JSON to text, so that every line is unit-tested. `--json` prints the
//! answer itself (amounts in satoshis).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::payments::display::{Sat, flag_words};

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn sat(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "?".into(), |n| Sat(n).to_string())
}

/// `2026-11-27T07:00:00Z (3 min ago)`; `–` when absent.
pub fn when(v: &Value, now: SystemTime) -> String {
    let Some(s) = v.as_str() else {
        return "–".into();
    };
    let Ok(t) = humantime::parse_rfc3339(s) else {
        return s.to_owned();
    };
    let rel = match t.duration_since(now) {
        Ok(ahead) => format!("in {}", span(ahead)),
        Err(e) => format!("{} ago", span(e.duration())),
    };
    format!("{s} ({rel})")
}

/// A rough duration for people: `45 s`, `12 min`, `3 h`, `2 d`.
pub fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn flags(p: &Value) -> String {
    let names: Vec<String> = p["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(flag_words)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The header of `payment list`.
pub const LIST_HEADER: [&str; 8] = [
    "ID",
    "STATUS",
    "AMOUNT",
    "RECEIVED",
    "CONF",
    "CREATED",
    "FLAGS",
    "REFERENCE",
];

/// `payment list`: a header, one line per payment, or an explicit "no payments" line.
pub fn payment_list(v: &Value, filtered: bool) -> String {
    let list = v["payments"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return if filtered {
            "No payments match.\n".into()
        } else {
            "No payments yet.\n".into()
        };
    }
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|p| {
            [
                text(&p["id"]).to_owned(),
                text(&p["status"]).to_owned(),
                sat(&p["amount_sat"]),
                sat(&p["received_sat"]),
                p["confirmations"].to_string(),
                text(&p["created_at"]).to_owned(),
                flags(p),
                text(&p["reference"]).to_owned(),
            ]
        })
        .collect();
    let mut widths = LIST_HEADER.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 8]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Amounts and counts line up on the right, text on the left; no trailing blanks.
            let _ = match i {
                2..=4 => write!(l, "{cell:>w$}  "),
                7 => write!(l, "{cell}"),
                _ => write!(l, "{cell:<w$}  "),
            };
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, LIST_HEADER);
    for r in &rows {
        line(&mut out, r.each_ref().map(String::as_str));
    }
    if let Some(c) = v["next_cursor"].as_str() {
        let _ = writeln!(out, "(more: --cursor {c})");
    }
    out
}

/// `payment show` (and `create`, `complete`): everything that matters about one payment.
pub fn payment(p: &Value, now: SystemTime) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<13} {value}");
    };
    row("payment", text(&p["id"]));
    row("reference", text(&p["reference"]));
    if let Some(d) = p["description"].as_str() {
        row("description", d);
    }
    row(
        "status",
        &format!(
            "{}, {} confirmation(s)",
            text(&p["status"]),
            p["confirmations"]
        ),
    );
    row("flags", &flags(p));
    let asked = p["amount_sat"].as_u64().unwrap_or(0);
    let got = p["received_sat"].as_u64().unwrap_or(0);
    row("asked", &format!("{} ({:#})", Sat(asked), Sat(asked)));
    let diff = match got.cmp(&asked) {
        std::cmp::Ordering::Less if got > 0 => format!(" ({} missing)", Sat(asked - got)),
        std::cmp::Ordering::Greater => format!(" ({} more than asked)", Sat(got - asked)),
        _ => String::new(),
    };
    row("received", &format!("{}{diff}", Sat(got)));
    row("address", text(&p["address"]));
    if text(&p["status"]) == "pending" {
        row("pay with", text(&p["bip21"]));
    }
    row("created", &when(&p["created_at"], now));
    row("expires", &when(&p["expires_at"], now));
    row("first seen", &when(&p["first_seen_at"], now));
    row("confirmed", &when(&p["confirmed_at"], now));
    row("updated", &when(&p["updated_at"], now));
    if p["archived_at"].is_string() {
        row("archived", &when(&p["archived_at"], now));
    }
    let txids: Vec<&str> = p["txids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if txids.is_empty() {
        row("transactions", "none yet");
    } else {
        for (i, t) in txids.iter().enumerate() {
            row(if i == 0 { "transactions" } else { "" }, t);
        }
    }
    if let Some(events) = p["events"].as_array() {
        out.push_str("history\n");
        for e in events {
            let from = e["from"].as_str().unwrap_or("new");
            let reason = text(&e["reason"]);
            let _ = write!(out, "  {}  {from} → {}", text(&e["at"]), text(&e["to"]));
            if !reason.is_empty() {
                let _ = write!(out, " ({reason})");
            }
            for t in e["txids"].as_array().into_iter().flatten() {
                let _ = write!(out, " {}", text(t));
            }
            out.push('\n');
        }
    }
    out
}

/// `status`: health, problems, Electrum, wallet, payments and (when configured) the sink.
pub fn status(s: &Value) -> String {
    let mut out = String::new();
    let healthy = s["healthy"].as_bool().unwrap_or(false);
    let _ = writeln!(
        out,
        "snakkaz-pay {} on {}",
        text(&s["version"]),
        text(&s["network"])
    );
    let _ = writeln!(
        out,
        "health:    {}",
        if healthy { "OK" } else { "DEGRADED" }
    );
    for p in s["problems"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  problem: {}", text(p));
    }
    let u = &s["update"];
    if let (Some(v), Some(slot)) = (u["image_version"].as_str(), u["slot"].as_str()) {
        let _ = writeln!(out, "system:    image {v}, root slot {slot}");
    }
    if let Some(summary) = u["summary"].as_str() {
        let _ = writeln!(
            out,
            "update:    {summary} [{}, since {}]",
            text(&u["last_outcome"]),
            text(&u["outcome_since"])
        );
    }
    if u["database"].is_object() {
        let _ = writeln!(out, "database:  {}", text(&u["database"]["detail"]));
    }
    let e = &s["electrum"];
    let _ = writeln!(
        out,
        "electrum:  {} {} ({}), tip {}",
        if e["connected"].as_bool() == Some(true) {
            "connected to"
        } else {
            "disconnected from"
        },
        e["server"].as_str().unwrap_or("–"),
        if e["tls"].as_bool() == Some(true) {
            "TLS"
        } else {
            "TCP"
        },
        e["tip_height"]
            .as_u64()
            .map_or("–".into(), |t| t.to_string())
    );
    let w = &s["wallet"];
    let _ = writeln!(
        out,
        "wallet:    {} confirmed, {} unconfirmed, {} addresses in use",
        sat(&w["confirmed_sat"]),
        sat(&w["unconfirmed_sat"]),
        w["addresses_in_use"]
    );
    let counts: Vec<String> = s["payments"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let _ = writeln!(
        out,
        "payments:  {}",
        if counts.is_empty() {
            "none yet".into()
        } else {
            counts.join(", ")
        }
    );
    let sink = &s["sink"];
    if sink["enabled"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "sink:      {}, {} change(s) waiting",
            if sink["connected"].as_bool() == Some(true) {
                "connected"
            } else {
                "not connected"
            },
            s["outbox"]["pending"]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(
            payment_list(&json!({"payments": [], "next_cursor": null}), false),
            "No payments yet.\n"
        );
        assert_eq!(
            payment_list(&json!({"payments": []}), true),
            "No payments match.\n"
        );
    }

    #[test]
    fn a_list_has_a_header_units_and_flags() {
        let v = json!({"payments": [{
            "id": "pay_1", "status": "pending", "amount_sat": 150000, "received_sat": 50000,
            "confirmations": 0, "created_at": "2026-11-27T07:00:00Z", "flags": ["late_payment"],
            "reference": "order 7"
        }], "next_cursor": "9"});
        let out = payment_list(&v, false);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID     STATUS"), "{out}");
        assert!(lines[1].contains("150,000 sat") && lines[1].contains("50,000 sat"));
        assert!(lines[1].contains("late payment") && lines[1].ends_with("order 7"));
        assert_eq!(lines[2], "(more: --cursor 9)");
    }

    #[test]
    fn a_payment_shows_flags_txids_amounts_times_and_history_in_words() {
        let p = json!({
            "id": "pay_1", "reference": "r", "status": "pending", "confirmations": 0,
            "flags": ["reorged"], "amount_sat": 150000, "received_sat": 100000,
            "address": "bcrt1qx", "bip21": "bitcoin:bcrt1qx?amount=0.0005",
            "created_at": "2026-11-27T07:00:00Z", "expires_at": "2026-11-27T08:00:00Z",
            "first_seen_at": null, "confirmed_at": null, "updated_at": "2026-11-27T07:05:00Z",
            "txids": ["aa", "bb"],
            "events": [
                {"at": "2026-11-27T07:00:00Z", "from": null, "to": "pending", "reason": "created", "txids": []},
                {"at": "2026-11-27T07:04:00Z", "from": "confirmed", "to": "pending", "reason": "reorg", "txids": ["aa"]}
            ]
        });
        let out = payment(&p, at("2026-11-27T07:10:00Z"));
        for want in [
            "flags         reorged",
            "asked         150,000 sat (0.0015 BTC)",
            "received      100,000 sat (50,000 sat missing)",
            "pay with      bitcoin:bcrt1qx?amount=0.0005",
            "created       2026-11-27T07:00:00Z (10 min ago)",
            "expires       2026-11-27T08:00:00Z (in 50 min)",
            "first seen    –",
            "transactions  aa\n              bb",
            "  2026-11-27T07:00:00Z  new → pending (created)",
            "  2026-11-27T07:04:00Z  confirmed → pending (reorg) aa",
        ] {
            assert!(out.contains(want), "{want:?} missing in:\n{out}");
        }
    }

    #[test]
    fn status_names_the_sink_only_when_configured() {
        let mut s = json!({
            "healthy": true, "version": "0.1.0", "network": "regtest", "problems": [],
            "electrum": {"connected": true, "server": "tcp://127.0.0.1:1", "tls": false, "tip_height": 120},
            "wallet": {"confirmed_sat": 150000, "unconfirmed_sat": 0, "addresses_in_use": 1},
            "payments": {"pending": 0, "confirmed": 1},
            "sink": {"enabled": false, "connected": false}, "outbox": {"pending": 3}
        });
        let out = status(&s);
        assert!(out.contains("wallet:    150,000 sat confirmed"), "{out}");
        assert!(out.contains("payments:  1 confirmed\n"), "{out}");
        assert!(!out.contains("sink") && !out.contains("outbox"), "{out}");
        s["sink"]["enabled"] = json!(true);
        assert!(status(&s).contains("sink:      not connected, 3 change(s) waiting"));
    }
}
