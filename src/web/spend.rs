//! Admin endpoints of transfers: build (`POST /api/admin/transfers`), list
//! (`GET /api/admin/transfers`) and broadcast (`POST /api/admin/transfers/broadcast`,
//! confirmed by a TOTP code). A lock-down refuses all of them (see `admin`).

use std::net::SocketAddr;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Shared;
use super::api::{Resp, audit, error, json_response, read_body};
use crate::spend::build::{TransferAmount, build_transfer};
use crate::spend::{SpendError, broadcast};
use crate::store::WriteBatch;

/// One broadcast at a time: the TOTP step check and its recording must not interleave.
static BROADCAST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spend_error(e: &SpendError) -> Resp {
    let status = match e {
        SpendError::NoDestination
        | SpendError::FeeRate { .. }
        | SpendError::Invalid(_)
        | SpendError::Parse(_) => StatusCode::BAD_REQUEST,
        SpendError::InsufficientFunds { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        SpendError::Totp(_) | SpendError::TotpSecret { .. } => StatusCode::FORBIDDEN,
        SpendError::Check(_) | SpendError::NotBuilt => StatusCode::CONFLICT,
        SpendError::Build(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.code(), e.to_string())
}

fn internal(e: impl std::fmt::Display) -> Resp {
    tracing::error!(error = %e, "store failure in the transfer API");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the appliance could not read or write its database; see the log",
    )
}

async fn body_json(req: Request<Incoming>) -> Result<Value, Resp> {
    let body = read_body(req).await?;
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed JSON body: {e}"),
        )
    })
}

/// The JSON of a transfer record (with its PSBT).
pub(crate) fn record_json(r: &crate::store::TransferRecord) -> Value {
    json!({
        "txid": r.txid,
        "kind": r.kind,
        "psbt": r.psbt,
        "destination": r.destination,
        "amount_sat": r.amount_sat,
        "change_sat": r.change_sat,
        "fee_sat": r.fee_sat,
        "fee_rate_sat_per_kvb": r.fee_rate_sat_per_kvb,
        "fee_rate_sat_vb": crate::ops::rate::display(r.fee_rate_sat_per_kvb),
        "inputs": r.inputs,
        "created_at": crate::clock::rfc3339(r.created_at),
        "broadcast_at": r.broadcast_at.map(crate::clock::rfc3339),
        "source": r.source,
    })
}

/// `POST /api/admin/transfers`: `{"keep_sat"|"amount_sat": N, "fee_rate_sat_per_kvb": R}`.
pub(crate) async fn create(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let body = match body_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let amount = match (body["keep_sat"].as_u64(), body["amount_sat"].as_u64()) {
        (Some(k), None) => TransferAmount::Keep(k),
        (None, Some(n)) => TransferAmount::Send(n),
        _ => {
            return spend_error(&SpendError::Invalid(
                "give exactly one of keep_sat (keep this much in the hot wallet) or amount_sat (send this much), as whole satoshis".into(),
            ));
        }
    };
    let Some(rate) = body["fee_rate_sat_per_kvb"].as_u64() else {
        return spend_error(&SpendError::Invalid(
            "fee_rate_sat_per_kvb: a whole number (sat per 1000 vB)".into(),
        ));
    };
    let app = &shared.app;
    let now = crate::clock::now();
    let (cs, built) = app.with_wallet(|w| {
        build_transfer(w, app.cfg.cold_storage.as_ref(), amount, rate, now, &source)
    });
    let mut batch = WriteBatch {
        wallet: cs,
        ..Default::default()
    };
    let resp = match &built {
        Ok(b) => {
            batch.transfers.push(b.record.clone());
            batch.audit.push(crate::access::audit(
                "transfer.create",
                &source,
                format!(
                    "built {}: {} sat to {}, {} sat change, fee {} sat",
                    b.record.txid,
                    b.record.amount_sat,
                    b.record.destination,
                    b.record.change_sat,
                    b.record.fee_sat
                ),
            ));
            json_response(StatusCode::CREATED, &record_json(&b.record))
        }
        Err(e) => {
            batch.audit.push(crate::access::audit(
                "transfer.create.refused",
                &source,
                e.to_string(),
            ));
            spend_error(e)
        }
    };
    if let Err(e) = app.store.commit(batch).await {
        return internal(e);
    }
    resp
}

/// `GET /api/admin/transfers`.
pub(crate) fn list(shared: &Shared) -> Resp {
    match shared.app.store.transfers() {
        Ok(list) => {
            let items: Vec<Value> = list.iter().map(record_json).collect();
            json_response(StatusCode::OK, &json!({"transfers": items}))
        }
        Err(e) => internal(e),
    }
}

/// `POST /api/admin/transfers/broadcast`: `{"tx": PSBT base64 | hex, "totp": "123456"}`.
pub(crate) async fn broadcast(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let body = match body_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (Some(tx_text), Some(code)) = (body["tx"].as_str(), body["totp"].as_str()) else {
        return spend_error(&SpendError::Invalid(
            "give tx (the signed PSBT in base64 or the raw transaction in hex) and totp (the 6-digit code)".into(),
        ));
    };
    let app = &shared.app;
    let _one_at_a_time = BROADCAST.lock().await;
    let src = source.as_str();
    let refuse = |e: SpendError| async move {
        audit(shared, "transfer.broadcast.refused", src, e.to_string()).await;
        spend_error(&e)
    };
    // The transaction first: a tampered or foreign one is refused without spending a code.
    let signed = match crate::spend::parse_signed(tx_text.as_bytes()) {
        Ok(t) => t,
        Err(e) => return refuse(e).await,
    };
    let record = match broadcast::find_record(&app.store, &signed) {
        Ok(r) => r,
        Err(e) => return refuse(e).await,
    };
    let fee = match broadcast::check_against(&record, &signed, &app.cfg) {
        Ok(f) => f,
        Err(e) => return refuse(e).await,
    };
    let step = match broadcast::check_totp(&app.cfg, &app.store, code, crate::clock::now()) {
        Ok(s) => s,
        Err(e) => return refuse(e).await,
    };
    // The step is spent now, whatever happens next: a code confirms one attempt.
    let used = WriteBatch {
        meta: vec![crate::store::totp_step_entry(step)],
        ..Default::default()
    };
    if let Err(e) = app.store.commit(used).await {
        return internal(e);
    }
    let cfg = app.cfg.clone();
    let tx = signed.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let session = crate::ops::open_lookup(&cfg)?;
        Ok::<_, crate::ops::OpsError>(session.broadcast(&tx)?)
    })
    .await;
    let txid = match sent {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            audit(
                shared,
                "transfer.broadcast.failed",
                &source,
                format!("{}: {e}", record.txid),
            )
            .await;
            return error(
                StatusCode::BAD_GATEWAY,
                "broadcast_failed",
                format!("the Electrum server did not accept the transaction: {e}"),
            );
        }
        Err(e) => return internal(e),
    };
    // The wallet learns of its own spend now, so the spent coins are not offered again.
    let now = crate::clock::now();
    let cs = app.with_wallet(|w| {
        w.apply_unconfirmed_txs([(signed, now)]);
        w.take_staged()
    });
    let mut done = record.clone();
    done.broadcast_at = Some(now);
    let batch = WriteBatch {
        wallet: cs,
        transfers: vec![done.clone()],
        audit: vec![crate::access::audit(
            "transfer.broadcast",
            &source,
            format!(
                "broadcast {txid}: {} sat to {}, fee {fee} sat",
                done.amount_sat, done.destination
            ),
        )],
        ..Default::default()
    };
    if let Err(e) = app.store.commit(batch).await {
        return internal(e);
    }
    tracing::warn!(%txid, amount_sat = done.amount_sat, destination = %done.destination, "transfer broadcast");
    let mut v = record_json(&done);
    v["broadcast_txid"] = json!(txid.to_string());
    v["fee_sat"] = json!(fee);
    json_response(StatusCode::OK, &v)
}

/// `POST /api/admin/spends/acknowledge`: the operator has dealt with the unexpected spends
/// (they stay recorded; the alert stops).
pub(crate) async fn acknowledge_spends(shared: &Shared, peer: SocketAddr) -> Resp {
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let store = &shared.app.store;
    let mut list = match store.unexpected_spends() {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let now = crate::clock::now();
    let mut acked = Vec::new();
    for u in list.iter_mut().filter(|u| u.acknowledged_at.is_none()) {
        u.acknowledged_at = Some(now);
        acked.push(u.txid.clone());
    }
    let batch = WriteBatch {
        meta: vec![crate::store::unexpected_spends_entry(&list)],
        audit: vec![crate::access::audit(
            "spend.unexpected.acknowledged",
            &source,
            format!("acknowledged: {}", acked.join(", ")),
        )],
        ..Default::default()
    };
    if let Err(e) = store.commit(batch).await {
        return internal(e);
    }
    json_response(StatusCode::OK, &json!({"acknowledged": acked}))
}
