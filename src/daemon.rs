//! `snakkaz-pay run`: start everything, serve until SIGTERM/SIGINT, stop in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::web::Tokens;

/// In-flight HTTP requests get this long to finish at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);
/// The processor and its Electrum thread get this long to stop.
const PROCESSOR_STOP: Duration = Duration::from_secs(4);
/// The Supabase sink gets this long after the processor (it was cancelled with the HTTP server).
const SINK_STOP: Duration = Duration::from_secs(1);

/// Reads the token files named in the configuration.
pub fn load_tokens(cfg: &Config) -> anyhow::Result<Tokens> {
    let api = match &cfg.api_token_file {
        Some(p) => Some(crate::secret::read_token_file(p).context("SNAKKAZ_PAY_API_TOKEN_FILE")?),
        None => None,
    };
    let admin = match &cfg.admin_token_file {
        Some(p) => Some(crate::secret::read_token_file(p).context("SNAKKAZ_PAY_ADMIN_TOKEN_FILE")?),
        None => None,
    };
    if api.is_none() && admin.is_none() {
        anyhow::bail!(
            "SNAKKAZ_PAY_API_TOKEN_FILE: not set; the API needs a token file (`snakkaz-pay init` creates one)"
        );
    }
    Ok(Tokens { api, admin })
}

/// Runs the daemon until a termination signal.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let tokens = load_tokens(&cfg)?;
    let sink_settings = crate::sink::settings(&cfg)?;
    let listen = cfg.listen;
    let app = App::open(cfg)?;
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
    let sink = match sink_settings {
        Some(s) => Some(crate::sink::spawn(
            app.store.clone(),
            s,
            app.sink_status.clone(),
            shutdown.child_token(),
        )?),
        None => None,
    };
    // The appliance's own alerts are sampled off the payment path, every few seconds.
    let sampler = tokio::spawn(alert_sampler(app.clone(), shutdown.child_token()));
    let web = tokio::spawn(crate::web::serve(
        listener,
        app.clone(),
        tokens,
        shutdown.clone(),
        HTTP_DRAIN,
    ));
    // Tests and scripts read this line to learn the port when listening on :0.
    tracing::info!(listen = %bound, "serving");
    println!("snakkaz-pay listening on http://{bound}");
    notify("READY=1");

    let watchdog = crate::systemd::watchdog_interval().map(|d| d / 2);
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
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
    app.stop_processor(PROCESSOR_STOP).await;
    if tokio::time::timeout(SINK_STOP, sampler).await.is_err() {
        tracing::warn!("alert sampler did not stop in time");
    }
    if let Some(mut sink) = sink {
        // Cancelled with `shutdown` above; unsent changes stay in the outbox for next time.
        if tokio::time::timeout(SINK_STOP, &mut sink).await.is_err() {
            tracing::warn!("Supabase sink did not stop within {SINK_STOP:?}; aborting it");
            sink.abort();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often the alert sampler looks at the appliance.
const ALERT_SAMPLE: Duration = Duration::from_secs(5);

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

fn alive(app: &Arc<App>) -> bool {
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
