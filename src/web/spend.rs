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
        SpendError::UnknownPayment(_) | SpendError::UnknownTx(_) => StatusCode::NOT_FOUND,
        SpendError::NotStuck { .. }
        | SpendError::NotBumpable(_)
        | SpendError::RateNotHigher { .. } => StatusCode::CONFLICT,
        SpendError::TooSmall { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        SpendError::Lookup(_) => StatusCode::BAD_GATEWAY,
        SpendError::HotOff => StatusCode::BAD_REQUEST,
        SpendError::Hot(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SpendError::HotRefused(_) => StatusCode::CONFLICT,
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
        "replaces": r.replaces,
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
    let signed = match (&built, body["sign"].as_bool() == Some(true)) {
        (Ok(b), true) => Some(hot_sign(shared, &source, &b.record, &b.psbt, &mut batch)),
        _ => None,
    };
    let resp = match (&built, &signed) {
        (Ok(b), signed) => {
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
            match signed {
                // Built and kept (it can still be signed offline); the hot key refused or failed.
                Some(Err(e)) => spend_error(e),
                Some(Ok(p)) => {
                    let mut v = record_json(&b.record);
                    v["signed_psbt"] = json!(p);
                    json_response(StatusCode::CREATED, &v)
                }
                None => json_response(StatusCode::CREATED, &record_json(&b.record)),
            }
        }
        (Err(e), _) => {
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
    let (record, fee) = match broadcast::check_against(&record, &signed, &app.cfg) {
        Ok(f) => (record, f),
        // Not the built one: perhaps the signer's own fee bump of a broadcast transfer.
        Err(e) => match replacement(shared, &signed, src) {
            Some(Ok(r)) => {
                let fee = r.fee_sat;
                (r, fee)
            }
            Some(Err(re)) => return refuse(re).await,
            None => return refuse(e).await,
        },
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
    let action = match done.kind.as_str() {
        "bump" => "transfer.bump.broadcast",
        "cpfp" => "transfer.cpfp.broadcast",
        _ => "transfer.broadcast",
    };
    let batch = WriteBatch {
        wallet: cs,
        transfers: vec![done.clone()],
        audit: vec![crate::access::audit(
            action,
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

/// A signed transaction judged as a fee bump of a broadcast transfer: `None` when it
/// replaces none, else the record to keep of it or why it is refused.
fn replacement(
    shared: &Shared,
    signed: &bdk_wallet::bitcoin::Transaction,
    source: &str,
) -> Option<Result<crate::store::TransferRecord, SpendError>> {
    let app = &shared.app;
    let records = match app.store.transfers() {
        Ok(r) => r,
        Err(e) => return Some(Err(SpendError::Build(e.to_string()))),
    };
    let old = crate::spend::bump::replaced_record(&records, signed)?;
    let now = crate::clock::now();
    Some(app.with_wallet(|w| crate::spend::bump::accept_replacement(w, old, signed, now, source)))
}

/// Hot mode: signs a just-built PSBT (after the hot-mode checks); records the audit entry.
fn hot_sign(
    shared: &Shared,
    source: &str,
    record: &crate::store::TransferRecord,
    psbt: &bdk_wallet::bitcoin::Psbt,
    batch: &mut WriteBatch,
) -> Result<String, SpendError> {
    let app = &shared.app;
    // Checked first (a refusal costs no decryption), the key decrypted with the wallet
    // unlocked (scrypt takes about a second), then checked again and signed.
    let r = app
        .with_wallet(|w| crate::spend::hot::check(w, &app.cfg, record, psbt))
        .and_then(|()| crate::spend::hot::unlock(&app.cfg))
        .and_then(|key| {
            app.with_wallet(|w| crate::spend::hot::sign(w, &app.cfg, record, psbt.clone(), &key))
        });
    match &r {
        Ok(_) => batch.audit.push(crate::access::audit(
            "transfer.hot_sign",
            source,
            format!("signed {} ({}) with the hot key", record.txid, record.kind),
        )),
        Err(e) => batch.audit.push(crate::access::audit(
            "transfer.hot_sign.refused",
            source,
            format!("{}: {e}", record.txid),
        )),
    }
    r.map(|p| crate::spend::build::psbt_base64(&p))
}

/// Persists a built PSBT (cpfp or bump) with its audit entry; answers its JSON.
async fn keep_built(
    shared: &Shared,
    action: &str,
    source: &str,
    cs: Option<bdk_wallet::ChangeSet>,
    built: Result<(crate::store::TransferRecord, Value), SpendError>,
    sign: Option<&bdk_wallet::bitcoin::Psbt>,
) -> Resp {
    let mut batch = WriteBatch {
        wallet: cs,
        ..Default::default()
    };
    let signed = match (&built, sign) {
        (Ok((r, _)), Some(p)) => Some(hot_sign(shared, source, r, p, &mut batch)),
        _ => None,
    };
    let resp = match (&built, &signed) {
        (Ok((r, extra)), signed) => {
            batch.transfers.push(r.clone());
            batch.audit.push(crate::access::audit(
                action,
                source,
                format!(
                    "built {}: {} sat to {}, fee {} sat at {} sat/vB",
                    r.txid,
                    r.amount_sat,
                    r.destination,
                    r.fee_sat,
                    crate::ops::rate::display(r.fee_rate_sat_per_kvb)
                ),
            ));
            if let Some(Err(e)) = signed {
                // Built and kept (it can still be signed offline); the hot key refused or failed.
                spend_error(e)
            } else {
                let mut v = record_json(r);
                if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                    v.extend(extra.clone());
                }
                if let Some(Ok(p)) = signed {
                    v["signed_psbt"] = json!(p);
                }
                json_response(StatusCode::CREATED, &v)
            }
        }
        (Err(e), _) => {
            batch.audit.push(crate::access::audit(
                &format!("{action}.refused"),
                source,
                e.to_string(),
            ));
            spend_error(e)
        }
    };
    if let Err(e) = shared.app.store.commit(batch).await {
        return internal(e);
    }
    resp
}

fn fee_rate_of(body: &Value) -> Result<u64, SpendError> {
    body["fee_rate_sat_per_kvb"].as_u64().ok_or_else(|| {
        SpendError::Invalid("fee_rate_sat_per_kvb: a whole number (sat per 1000 vB)".into())
    })
}

/// `POST /api/admin/cpfp`: `{"payment_id": ID, "fee_rate_sat_per_kvb": R, "to": "change"|"cold"}`.
pub(crate) async fn cpfp(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    use crate::spend::cpfp::{ChildRequest, ChildTo, Package, build_child, stuck_outputs};
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let body = match body_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let rate = match fee_rate_of(&body) {
        Ok(r) => r,
        Err(e) => return spend_error(&e),
    };
    let Some(id) = body["payment_id"].as_str().map(str::to_owned) else {
        return spend_error(&SpendError::Invalid("payment_id: the payment's id".into()));
    };
    let app = &shared.app;
    let refused = |e: SpendError| keep_built(shared, "transfer.cpfp", &source, None, Err(e), None);
    let to = match ChildTo::parse(body["to"].as_str().unwrap_or("change")) {
        Ok(t) => t,
        Err(e) => return refused(e).await,
    };
    if let Err(e) = crate::spend::check_fee_rate(rate) {
        return refused(e).await;
    }
    if to == ChildTo::Cold && app.cfg.cold_storage.is_none() {
        return refused(SpendError::NoDestination).await;
    }
    let payment = match app.store.payment(&id) {
        Ok(Some(p)) => p,
        Ok(None) => return refused(SpendError::UnknownPayment(id)).await,
        Err(e) => return internal(e),
    };
    let spk = match payment.address.parse::<bdk_wallet::bitcoin::Address<_>>() {
        Ok(a) => a.assume_checked().script_pubkey(),
        Err(e) => return internal(e),
    };
    let outputs = match app.with_wallet(|w| stuck_outputs(w, &id, &spk)) {
        Ok(o) => o,
        Err(e) => return refused(e).await,
    };
    let mut parents: Vec<bdk_wallet::bitcoin::Txid> =
        outputs.iter().map(|o| o.outpoint.txid).collect();
    parents.sort();
    parents.dedup();
    // The package (parents and their unconfirmed ancestors) from the Electrum server: the
    // wallet does not know the fees of transactions paying it.
    let cfg = app.cfg.clone();
    let store = app.store.clone();
    let ids = parents.clone();
    let looked = tokio::time::timeout(
        crate::ops::LOOKUP_DEADLINE,
        tokio::task::spawn_blocking(move || {
            let session = crate::ops::open_lookup(&cfg)?;
            let mut ins = crate::ops::txinfo::Inspector::new(&session, &store, cfg.network)?;
            ids.iter()
                .map(|t| ins.report(*t))
                .collect::<Result<Vec<_>, crate::ops::OpsError>>()
        }),
    )
    .await;
    let reports = match looked {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(e))) => {
            return refused(SpendError::Lookup(format!(
                "looking up the payment's transaction failed: {e}"
            )))
            .await;
        }
        Ok(Err(e)) => return internal(e),
        Err(_) => {
            return refused(SpendError::Lookup(format!(
                "the Electrum server did not answer within {} s; retry later",
                crate::ops::LOOKUP_DEADLINE.as_secs()
            )))
            .await;
        }
    };
    let mut fee = 0u64;
    let mut vsize = 0u64;
    for r in &reports {
        let Some(f) = r.package_fee_sat else {
            return refused(SpendError::Lookup(format!(
                "the fee of {} or one of its unconfirmed ancestors is unknown to the Electrum server; retry later",
                r.txid
            )))
            .await;
        };
        fee += f;
        vsize += r.package_vsize;
    }
    let package = Package {
        parents: parents.iter().map(ToString::to_string).collect(),
        fee_sat: fee,
        vsize,
    };
    let now = crate::clock::now();
    let (cs, built) = app.with_wallet(|w| {
        build_child(
            w,
            app.cfg.cold_storage.as_ref(),
            ChildRequest {
                payment_id: &id,
                outputs: &outputs,
                package,
                target_kvb: rate,
                to,
                now,
                source: &source,
            },
        )
    });
    let psbt = built.as_ref().ok().map(|c| c.built.psbt.clone());
    let sign = body["sign"].as_bool() == Some(true);
    let built = built.map(|c| {
        let extra = json!({
            "payment_id": id,
            "parents": c.package.parents,
            "package_fee_sat": c.package.fee_sat,
            "package_vsize": c.package.vsize,
            "package_fee_rate_before_sat_vb": crate::ops::rate::display(c.package_rate_before_kvb),
            "package_fee_rate_after_sat_vb": crate::ops::rate::display(c.package_rate_after_kvb),
        });
        (c.built.record, extra)
    });
    let to_sign = psbt.as_ref().filter(|_| sign);
    keep_built(shared, "transfer.cpfp", &source, cs, built, to_sign).await
}

/// `POST /api/admin/bump`: `{"txid": TXID, "fee_rate_sat_per_kvb": R}`.
pub(crate) async fn bump(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let source = format!("admin-api {}", peer.ip().to_canonical());
    let body = match body_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let rate = match fee_rate_of(&body) {
        Ok(r) => r,
        Err(e) => return spend_error(&e),
    };
    let Some(txid) = body["txid"].as_str().map(str::to_owned) else {
        return spend_error(&SpendError::Invalid("txid: the transfer's txid".into()));
    };
    let app = &shared.app;
    let record = match app.store.transfer(&txid) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let now = crate::clock::now();
    let (cs, built) = app.with_wallet(|w| {
        crate::spend::bump::build_bump(w, &txid, record.as_ref(), rate, now, &source)
    });
    let built = built.map(|b| {
        let extra = json!({"replaces": txid});
        (b.record, extra)
    });
    keep_built(shared, "transfer.bump", &source, cs, built, None).await
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
