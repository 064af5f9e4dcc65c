//! Admin endpoints of operator look-ups: `GET /api/admin/tx/{query}` and
//! `GET /api/admin/fees`. Each opens its own short Electrum session off the async runtime.

use http::StatusCode;

use super::api::{Resp, error, json_response};
use crate::app::App;
use crate::ops::{LOOKUP_DEADLINE, OpsError};

/// The HTTP answer to a look-up failure.
pub(crate) fn ops_error(e: &OpsError) -> Resp {
    let status = match e {
        OpsError::UnknownTx(_) | OpsError::NotFound(_) => StatusCode::NOT_FOUND,
        OpsError::Invalid(_) => StatusCode::BAD_REQUEST,
        OpsError::Chain(_) => StatusCode::BAD_GATEWAY,
        OpsError::Store(inner) => {
            tracing::error!(error = %inner, "store failure in a look-up");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, e.code(), e.to_string())
}

/// Runs a blocking look-up with the look-up deadline.
pub(super) async fn blocking<T: serde::Serialize + Send + 'static>(
    app: &App,
    f: impl FnOnce(&crate::config::Config, &crate::store::Store) -> Result<T, OpsError> + Send + 'static,
) -> Resp {
    let cfg = app.cfg.clone();
    let store = app.store.clone();
    let task = tokio::task::spawn_blocking(move || f(&cfg, &store));
    match tokio::time::timeout(LOOKUP_DEADLINE, task).await {
        Ok(Ok(Ok(v))) => json_response(StatusCode::OK, &v),
        Ok(Ok(Err(e))) => ops_error(&e),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "look-up task failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the look-up failed; see the log",
            )
        }
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "electrum_timeout",
            format!(
                "the Electrum server did not answer the look-up within {} s; retry later",
                LOOKUP_DEADLINE.as_secs()
            ),
        ),
    }
}

/// `GET /api/admin/tx/{query}`.
pub(crate) async fn tx(app: &App, query: &str) -> Resp {
    let query = percent_decode(query);
    blocking(app, move |cfg, store| {
        crate::ops::txinfo::lookup(cfg, store, &query)
    })
    .await
}

/// `GET /api/admin/fees`.
pub(crate) async fn fees(app: &App) -> Resp {
    blocking(app, crate::ops::fees::lookup).await
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("q={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
