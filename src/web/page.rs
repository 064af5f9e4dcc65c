//! The status page (server-rendered, nothing loaded from outside).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::Shared;
use super::api::Resp;

/// `GET /`: a one-screen summary of the appliance's health.
pub(crate) fn index(shared: &Shared) -> Resp {
    let body = match shared.app.status() {
        Ok(s) => {
            let rows: String = s
                .payments
                .iter()
                .map(|(k, v)| format!("<tr><td>{}</td><td>{v}</td></tr>", escape(k)))
                .collect();
            let problems: String = s
                .problems
                .iter()
                .map(|p| format!("<li>{}</li>", escape(p)))
                .collect();
            format!(
                "<!doctype html><html lang=en><head><meta charset=utf-8>\
                 <meta name=viewport content=\"width=device-width,initial-scale=1\">\
                 <title>snakkaz-pay</title></head><body>\
                 <h1>snakkaz-pay</h1><p id=health>{health}</p><ul>{problems}</ul>\
                 <p>Network: {network} · Electrum: {conn} · Tip: {tip}</p>\
                 <table><tr><th>status</th><th>payments</th></tr>{rows}</table></body></html>",
                health = if s.healthy { "healthy" } else { "degraded" },
                network = escape(&s.network),
                conn = if s.electrum.connected {
                    "connected"
                } else {
                    "disconnected"
                },
                tip = s.electrum.tip_height.map_or("-".into(), |t| t.to_string()),
            )
        }
        Err(e) => format!(
            "<!doctype html><p>status unavailable: {}</p>",
            escape(&e.to_string())
        ),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'",
        )
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

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
