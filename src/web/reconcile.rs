//! `POST /api/admin/reconcile[/fix]`: one slice of a reconciliation, run by the daemon
//! that holds the database. The CLI calls again until the answer says `complete`.

use super::api::Resp;
use crate::app::App;

/// Runs one slice (at most `ops::reconcile::SLICE`) and answers the report.
pub(crate) async fn slice(app: &App, fix: bool) -> Resp {
    super::ops::blocking(app, move |cfg, store| {
        crate::ops::reconcile::run_slice(cfg, store, fix)
    })
    .await
}
