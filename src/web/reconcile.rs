//! `POST /api/admin/reconcile[/fix]`: one slice of a reconciliation, run by the daemon
//! that holds the database. The CLI calls again until the answer says `complete`.
//! `POST /api/admin/archive/{secs}[/dry-run]`: an archive pass, likewise.

use super::api::Resp;
use crate::app::App;

/// Runs one slice (at most `ops::reconcile::SLICE`) and answers the report.
pub(crate) async fn slice(app: &App, fix: bool) -> Resp {
    super::ops::blocking(app, move |cfg, store| {
        crate::ops::reconcile::run_slice(cfg, store, fix)
    })
    .await
}

/// `POST /api/admin/archive/{older_than_secs}[/dry-run]`: one archive pass.
pub(crate) async fn archive(app: &App, secs: &str, dry_run: bool) -> Resp {
    let Ok(secs) = secs.parse::<u64>() else {
        return super::api::error(
            http::StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{secs:?}: the age must be whole seconds"),
        );
    };
    super::ops::blocking(app, move |cfg, store| {
        crate::ops::archive::run(cfg, store, std::time::Duration::from_secs(secs), dry_run)
    })
    .await
}
