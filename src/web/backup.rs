//! Admin endpoints of backups: a consistent snapshot of the database, and recording the
//! result of `verify-backup` while the daemon holds the database.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::api::{MAX_BODY, Resp, error, json_response};
use crate::app::App;
use crate::store::{VerificationRecord, WriteBatch, verification_entry};

/// `POST /api/admin/backup`: the snapshot file's bytes (a redb file of one read transaction).
pub(crate) async fn snapshot(app: &App) -> Resp {
    let store = app.store.clone();
    let db = app.cfg.db_path.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        // Beside the database: the daemon may write there, and it is as private.
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".snakkaz-pay-snapshot-")
            .tempdir_in(dir)
            .map_err(|e| format!("creating a temporary directory in {}: {e}", dir.display()))?;
        let path = tmp.path().join("snapshot.redb");
        store.snapshot_to(&path).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| format!("reading the snapshot: {e}"))
    })
    .await;
    match r {
        Ok(Ok(bytes)) => {
            tracing::info!(bytes = bytes.len(), "snapshot taken for a backup");
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Full::new(Bytes::from(bytes)))
                .expect("static response parts are valid")
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "snapshot for a backup failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "snapshot_failed",
                format!("the snapshot failed: {e}; check free space beside the database"),
            )
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the snapshot task failed: {e}"),
        ),
    }
}

/// `POST /api/admin/backup/verification`: stores a `verify-backup` result.
pub(crate) async fn record_verification(app: &App, req: Request<Incoming>) -> Resp {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("could not read body: {e}"),
            );
        }
    };
    let rec: VerificationRecord = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("expected a verification record: {e}"),
            );
        }
    };
    let batch = WriteBatch {
        meta: vec![verification_entry(&rec)],
        ..Default::default()
    };
    match app.store.commit(batch).await {
        Ok(_) => json_response(StatusCode::OK, &serde_json::json!({"recorded": true})),
        Err(e) => {
            tracing::error!(error = %e, "recording a backup verification failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the verification could not be recorded; see the log",
            )
        }
    }
}
