//! `GET /api/metrics/bitcoin` and `GET /api/alerts`.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

use super::api::{Resp, error, json_response};
use crate::app::App;

/// The Prometheus exposition, recomputed from the store, wallet and chain status.
pub(crate) fn metrics(app: &App) -> Resp {
    let a = crate::alerts::assess(app);
    let status = match a.status {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "metrics: status unavailable");
            // A failed scrape is what Prometheus should see when the store is unreadable.
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the appliance could not read its status; see the log",
            );
        }
    };
    let host = crate::metrics::host_facts(&app.cfg.db_path);
    let body = app
        .metrics
        .render(&status, &a.flags, &a.alerts, &host, &a.security);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// The appliance's own evaluation of the alert rules.
pub(crate) fn alerts(app: &App) -> Resp {
    let a = crate::alerts::assess(app);
    json_response(
        StatusCode::OK,
        &json!({
            "alerts": a.alerts,
            "rules": crate::alerts::RULES,
            "evaluated_at": crate::clock::rfc3339(crate::clock::now()),
        }),
    )
}
