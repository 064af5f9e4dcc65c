//! `snakkaz-pay run`: start everything, serve until SIGTERM/SIGINT, stop in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::access::LiveTokens;
use crate::app::App;
use crate::config::Config;
use crate::web::Tokens;

/// In-flight HTTP requests get this long to finish at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);
/// The processor and its Electrum thread get this long to stop.
const PROCESSOR_STOP: Duration = Duration::from_secs(4);
/// The Supabase sink gets this long after the processor (it was cancelled with the HTTP server).
const SINK_STOP: Duration = Duration::from_secs(1);

/// How often the daemon looks for a local lock-down or unlock request file.
const LOCAL_REQUEST_POLL: Duration = Duration::from_secs(1);

/// Reads the token files named in the configuration.
pub fn load_tokens(cfg: &Config) -> anyhow::Result<Tokens> {
    Ok(Tokens::load(cfg)?)
}

/// Runs the daemon until a termination signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let tokens = Arc::new(LiveTokens::new(load_tokens(&cfg)?));
    let sink_settings = crate::sink::settings(&cfg)?;
    let tls = cfg
        .tls_cert_file
        .as_deref()
        .map(crate::web::tls::load)
        .transpose()?;
    let listen = cfg.listen;
    let electrum_rpc = match &cfg.electrum_rpc {
        Some(r) => Some((
            r.listen,
            crate::electrum_compat::rpc::load_credentials(r)
                .context("SNAKKAZ_PAY_ELECTRUM_RPC_PASSWORD_FILE")?,
        )),
        None => None,
    };
    let app = App::open(cfg)?;
    record_start(&app).await;
    if sink_settings.is_some()
        && app
            .store
            .outbox_skipped()
            .context("reading the outbox state")?
    {
        // Changes were made while no sink was configured: the mirror starts complete.
        app.store
            .commit(crate::store::WriteBatch {
                requeue_all: true,
                clear_outbox_skipped: true,
                ..Default::default()
            })
            .await
            .context("re-queueing every payment for the newly configured sink")?;
        tracing::info!(
            "a sink is configured after changes made without one: every payment re-queued"
        );
    }
    let listener = crate::web::bind(listen)
        .await
        .with_context(|| format!("SNAKKAZ_PAY_LISTEN: cannot listen on {listen}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    app.start_processor().await?;
    let shutdown = CancellationToken::new();
    // The sink only reads the store and has its own task: a slow or absent Postgres
    // never holds up payment processing.
    let mut sink = match sink_settings {
        Some(s) => Some(spawn_sink(&app, s, &shutdown)?),
        None => None,
    };
    // The appliance's own alerts are sampled off the payment path, every few seconds.
    let sampler = tokio::spawn(alert_sampler(app.clone(), shutdown.child_token()));
    let web = tokio::spawn(crate::web::serve(
        listener,
        app.clone(),
        tokens.clone(),
        tls.as_ref().map(|t| t.acceptor.clone()),
        shutdown.clone(),
        HTTP_DRAIN,
    ));
    // The Electrum-compatible JSON-RPC, when configured (see electrum_compat::rpc).
    let electrum_rpc = match electrum_rpc {
        Some((addr, creds)) => {
            let l = crate::web::bind(addr).await.with_context(|| {
                format!("SNAKKAZ_PAY_ELECTRUM_RPC_LISTEN: cannot listen on {addr}")
            })?;
            let rpc_bound = l.local_addr().context("reading the bound address")?;
            // Also in the log, where tests read the port when listening on :0.
            tracing::info!(listen = %rpc_bound, "Electrum JSON-RPC serving");
            println!("snakkaz-pay Electrum JSON-RPC listening on http://{rpc_bound}");
            Some(tokio::spawn(crate::electrum_compat::rpc::serve(
                l,
                app.clone(),
                creds,
                shutdown.clone(),
                HTTP_DRAIN,
            )))
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(t) = &tls {
        // The operator compares this with what the browser shows for the self-signed
        // certificate. Printed before the line below, which tells scripts the daemon is up.
        println!(
            "snakkaz-pay certificate SHA-256 fingerprint: {}",
            t.fingerprint
        );
        tracing::info!(fingerprint = %t.fingerprint, "HTTPS certificate");
    }
    // Tests and scripts read this line to learn the port when listening on :0.
    tracing::info!(listen = %bound, scheme, "serving");
    println!("snakkaz-pay listening on {scheme}://{bound}");
    if tls.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(
            listen = %bound,
            "serving plain HTTP beyond loopback: tokens travel unencrypted on the LAN; set SNAKKAZ_PAY_TLS_CERT_FILE (`snakkaz-pay tls generate`)"
        );
    }
    notify("READY=1");

    let watchdog = crate::systemd::watchdog_interval().map(|d| d / 2);
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let mut local_requests = tokio::time::interval(LOCAL_REQUEST_POLL);
    local_requests.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = hup.recv() => {
                reload_tokens(&app, &tokens).await;
                reload_sink(&app, &mut sink, &shutdown).await;
            }
            _ = local_requests.tick() => {
                if let Err(e) = app.revive_processor().await {
                    tracing::error!(error = %format!("{e:#}"), "restarting the payment processor failed; retrying");
                }
                if let Err(e) = crate::access::local::poll_requests(&app.store, &tokens).await {
                    tracing::error!(error = %e, "could not apply a local request (lock-down, unlock, tokens)");
                }
            }
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for SIGINT")?;
                break;
            }
            _ = tick.tick(), if watchdog.is_some() => {
                // Only a main loop that can still reach its database tells systemd it is alive.
                if alive(&app) {
                    notify("WATCHDOG=1");
                }
            }
        }
    }
    tracing::info!("stopping");
    notify("STOPPING=1");
    shutdown.cancel();
    if let Err(e) = web.await {
        tracing::error!(error = %e, "HTTP server task failed");
    }
    if let Some(rpc) = electrum_rpc
        && let Err(e) = rpc.await
    {
        tracing::error!(error = %e, "Electrum JSON-RPC task failed");
    }
    app.stop_processor(PROCESSOR_STOP).await;
    if tokio::time::timeout(SINK_STOP, sampler).await.is_err() {
        tracing::warn!("alert sampler did not stop in time");
    }
    if let Some((task, _)) = sink {
        // Cancelled with `shutdown` above; unsent changes stay in the outbox for next time.
        stop_sink(task).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often the alert sampler looks at the appliance (cheap: maintained counters).
const ALERT_SAMPLE: Duration = Duration::from_secs(1);

async fn alert_sampler(app: Arc<App>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ALERT_SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let app = app.clone();
                // Store reads stay off the runtime's worker threads.
                let sampled = tokio::task::spawn_blocking(move || {
                    crate::alerts::tick(&app, crate::clock::now());
                })
                .await;
                if let Err(e) = sampled {
                    tracing::error!(error = %e, "alert sampling panicked");
                }
            }
        }
    }
}

/// A running sink task and the token that stops it.
type SinkTask = (tokio::task::JoinHandle<()>, CancellationToken);

fn spawn_sink(
    app: &Arc<App>,
    settings: crate::sink::SinkSettings,
    shutdown: &CancellationToken,
) -> Result<SinkTask, crate::sink::SinkError> {
    let cancel = shutdown.child_token();
    let task = crate::sink::spawn(
        app.store.clone(),
        settings,
        app.sink_status.clone(),
        cancel.clone(),
    )?;
    Ok((task, cancel))
}

async fn stop_sink(mut task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(SINK_STOP, &mut task).await.is_err() {
        tracing::warn!("Supabase sink did not stop within {SINK_STOP:?}; aborting it");
        task.abort();
    }
}

/// SIGHUP: the Supabase connection string is re-read and the sink reconnects with it
/// (revoked database credentials are replaced without a restart). A sink that was off
/// at start stays off; an unusable new file keeps the running sink.
async fn reload_sink(app: &Arc<App>, sink: &mut Option<SinkTask>, shutdown: &CancellationToken) {
    let settings = match crate::sink::settings(&app.cfg) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the Supabase connection string was not reloaded; the sink keeps the old one");
            audit_now(app, "sink.reload.failed", e.to_string()).await;
            return;
        }
    };
    if let Some((task, cancel)) = sink.take() {
        cancel.cancel();
        stop_sink(task).await;
    }
    match spawn_sink(app, settings, shutdown) {
        Ok(t) => {
            *sink = Some(t);
            tracing::warn!("SIGHUP: Supabase connection string re-read; the sink reconnects");
            audit_now(
                app,
                "sink.reload",
                "SIGHUP: Supabase connection string re-read".into(),
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the Supabase sink could not restart");
            audit_now(app, "sink.reload.failed", e.to_string()).await;
        }
    }
}

async fn audit_now(app: &App, action: &str, detail: String) {
    let batch = crate::store::WriteBatch {
        audit: vec![crate::access::audit(action, "signal", detail)],
        ..Default::default()
    };
    if let Err(e) = app.store.commit(batch).await {
        tracing::error!(error = %e, action, "could not record an audit entry");
    }
}

/// Records the configuration the daemon starts with (no secrets), flagging a change
/// since the previous start: the guide's monthly review reads these.
async fn record_start(app: &App) {
    let c = &app.cfg;
    let servers: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
    let detail = format!(
        "network {}, listen {}, payments {}, electrum [{}], page auth {}, allowed hosts [{}], sink {}, api token {}, admin token {}",
        c.network,
        c.listen,
        if c.enabled { "enabled" } else { "disabled" },
        servers.join(", "),
        c.page_auth.as_str(),
        c.allowed_hosts.join(", "),
        if c.supabase_db_url_file.is_some() {
            "on"
        } else {
            "off"
        },
        if c.api_token_file.is_some() {
            "set"
        } else {
            "unset"
        },
        if c.admin_token_file.is_some() {
            "set"
        } else {
            "unset"
        },
    );
    let previous = app.store.audit_since(0, 1, |e| {
        e.action == "config.start" || e.action == "config.changed"
    });
    let action = match previous {
        Ok(p) if p.first().is_some_and(|e| e.detail != detail) => "config.changed",
        _ => "config.start",
    };
    if action == "config.changed" {
        tracing::warn!(%detail, "configuration changed since the last start");
    }
    let batch = crate::store::WriteBatch {
        audit: vec![crate::access::audit(action, "daemon", detail)],
        ..Default::default()
    };
    if let Err(e) = app.store.commit(batch).await {
        tracing::error!(error = %e, "could not record the start-up configuration");
    }
}

/// SIGHUP: the token files are re-read and replace the tokens in force at once.
async fn reload_tokens(app: &App, tokens: &LiveTokens) {
    let (action, detail) = match tokens.reload(&app.cfg, Duration::ZERO) {
        Ok(r) => {
            tracing::warn!(api = r.api, admin = r.admin, "SIGHUP: token files re-read");
            (
                "tokens.rotate",
                format!(
                    "SIGHUP: token files re-read: api {}, admin {}",
                    if r.api { "replaced" } else { "unchanged" },
                    if r.admin { "replaced" } else { "unchanged" }
                ),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: token files not reloaded; the old tokens stay in force");
            ("tokens.rotate.failed", format!("SIGHUP: {e}"))
        }
    };
    let batch = crate::store::WriteBatch {
        audit: vec![crate::access::audit(action, "signal", detail)],
        ..Default::default()
    };
    if let Err(e) = app.store.commit(batch).await {
        tracing::error!(error = %e, "could not record the token reload");
    }
}

/// Longest silence of the processor's heartbeat (it beats every second) before the
/// watchdog ping is withheld.
const PROCESSOR_STALL_SECS: u64 = 60;

fn alive(app: &Arc<App>) -> bool {
    let now = crate::clock::now();
    if let Some(last) = app.alert_tracker.last_heartbeat()
        && now.saturating_sub(last) > PROCESSOR_STALL_SECS
    {
        tracing::error!(
            silent_secs = now.saturating_sub(last),
            "the payment processor makes no progress; withholding the watchdog ping"
        );
        return false;
    }
    match app.store.status_counts() {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "database unreadable; withholding the watchdog ping");
            false
        }
    }
}

fn notify(state: &str) {
    if let Err(e) = crate::systemd::notify(state) {
        tracing::warn!(error = %e, state, "could not notify systemd");
    }
}
