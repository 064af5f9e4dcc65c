//! The status page: an HTML shell, server-rendered fragments it refreshes every two
//! seconds, and its embedded stylesheet and script. Nothing is loaded from outside.
//!
//! The shell carries no data, so it can be served to anyone; the fragments need the API
//! token when `SNAKKAZ_PAY_PAGE_AUTH=token` (the script asks for it and keeps it in
//! sessionStorage). Every value is escaped where the fragment is rendered (`render`).

mod chart;
mod render;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::api::{Resp, error};
use super::{Access, Shared};
use crate::config::PageAuth;

const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");
const ICON: &str = include_str!("assets/icon.svg");

/// Nothing but the appliance's own files; no inline script or style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether a request may read the page's data (fragments, and metrics).
pub(crate) fn may_read(shared: &Shared, access: Access) -> bool {
    shared.app.cfg.page_auth == PageAuth::None || access >= Access::Api
}

/// Routes `/`, `/payments/{id}`, `/page/...` and `/assets/...`; `None` when not a page path.
pub(crate) fn route(shared: &Shared, access: Access, segments: &[&str]) -> Option<Resp> {
    let resp = match segments {
        [""] => shell(shared, "Overview", "/page/overview", None),
        ["payments", id] => {
            let src = format!("/page/payments/{}", encode_segment(id));
            shell(shared, "Payment", &src, Some(id))
        }
        ["page", rest @ ..] => {
            if !may_read(shared, access) {
                return Some(error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this page needs the API token",
                ));
            }
            match rest {
                ["overview"] => html(StatusCode::OK, render::overview(&shared.app)),
                ["payments", id] => match render::payment(&shared.app, id) {
                    Ok(body) => html(StatusCode::OK, body),
                    Err((code, body)) => html(code, body),
                },
                _ => return None,
            }
        }
        ["assets", "page.css"] => asset("text/css; charset=utf-8", CSS),
        ["assets", "page.js"] => asset("text/javascript; charset=utf-8", JS),
        ["assets", "icon.svg"] => asset("image/svg+xml", ICON),
        _ => return None,
    };
    Some(resp)
}

fn shell(shared: &Shared, title: &str, src: &str, payment: Option<&str>) -> Resp {
    let auth = shared.app.cfg.page_auth.as_str();
    // With no token needed the first paint already has the data; the script refreshes it.
    let initial = if shared.app.cfg.page_auth == PageAuth::None {
        match payment {
            None => render::overview(&shared.app),
            Some(id) => render::payment(&shared.app, id).unwrap_or_else(|(_, b)| b),
        }
    } else {
        String::new()
    };
    let body = format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title} · snakkaz-pay</title>\
         <link rel=icon href=\"/assets/icon.svg\"><link rel=stylesheet href=\"/assets/page.css\">\
         <script defer src=\"/assets/page.js\"></script></head>\
         <body data-auth=\"{auth}\">\
         <header><a class=brand href=\"/\"><img src=\"/assets/icon.svg\" alt=\"\" width=24 height=24> snakkaz-pay</a>\
         <span id=live class=live>loading…</span></header>\
         <form id=login class=card hidden><h2>API token</h2>\
         <p>This appliance asks for its API token to show its status. It stays in this browser tab only.</p>\
         <p id=login-error class=bad></p>\
         <input id=token type=password autocomplete=current-password aria-label=\"API token\" required>\
         <button type=submit>Show status</button></form>\
         <main id=content data-src=\"{src}\">{initial}</main>\
         <footer>snakkaz-pay {version} · <a href=\"/api/metrics/bitcoin\">metrics</a></footer>\
         </body></html>\n",
        title = render::escape(title),
        src = render::escape(src),
        version = env!("CARGO_PKG_VERSION"),
    );
    html(StatusCode::OK, body)
}

fn html(code: StatusCode, body: String) -> Resp {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn asset(content_type: &'static str, body: &'static str) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "max-age=300")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response parts are valid")
}

fn encode_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
