//! The service, `ferry serve`: the event-driven reconcile loop, the HTTP API with its
//! authentication, server-sent events, push webhooks, `/metrics`, the notification worker,
//! TLS and graceful shutdown. axum, axum-server, tower-http, utoipa and prometheus-client are
//! used only here.
//!
//! One [`AppState`](app::AppState) is shared by every handler and background task; engine
//! work runs on blocking threads; the reconcile loop, the fetch loop and the notification
//! worker stop with the shutdown token.

mod api;
mod app;
mod body;
mod caller;
mod error;
mod events;
mod health;
mod hooks;
mod metrics;
mod openapi;
mod reconcile;
mod signature;
mod ui;
mod writes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use tokio_util::task::TaskTracker;

pub use error::{ApiError, ServerError};
pub use openapi::description as openapi;
pub use signature::sign as sign_webhook;

use crate::notify::{OpenStore, Targets, Worker, WorkerOptions};
use crate::promotion::{Engine, EngineOptions, Holder, ServerRecord};
use crate::state::{DEFAULT_OPEN_WAIT, SqliteStore, StateStore};
use app::{AppSettings, AppState, LOOP_ACTOR, loop_actor};

/// How `ferry serve` runs.
pub struct ServeOptions {
    pub repo: PathBuf,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    /// A PEM certificate chain and its key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How often the source branch is fetched when the repository has a remote.
    pub fetch_interval: Duration,
    /// How long running steps get to reach their next persisted state on shutdown.
    pub grace: Duration,
    pub engine_options: EngineOptions,
    /// The shared secret of push webhooks (the content of `FERRY_WEBHOOK_SECRET_FILE`).
    pub webhook_secret: Option<Vec<u8>>,
    /// The longest the reconcile loop sleeps between heartbeats.
    pub period: Duration,
    /// A second listener serving only `/metrics`, without authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// The URL people reach the service (and its web UI) at, for links in notifications;
    /// the listening URL when `None` (unless it listens on every address).
    pub public_url: Option<String>,
    /// Called on the reconcile loop's thread at the start of each round, before it looks at
    /// the pipeline: the tests hold the loop there to see `/healthz` turn red.
    pub round_hook: Option<RoundHook>,
}

/// Where a started service listens.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The API and the web UI.
    pub url: String,
    /// `/metrics` without authentication, with `--metrics-listen`.
    pub metrics_url: Option<String>,
}

/// See [`ServeOptions::round_hook`].
pub type RoundHook = Arc<dyn Fn() + Send + Sync>;

/// Reads a webhook secret file: its content without the trailing newline.
pub fn read_webhook_secret(path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    let text = std::fs::read(path).map_err(|source| ServerError::WebhookSecret {
        path: path.display().to_string(),
        source,
    })?;
    let trimmed = text.trim_ascii_end().to_vec();
    if trimmed.is_empty() {
        return Err(ServerError::EmptyWebhookSecret {
            path: path.display().to_string(),
        });
    }
    Ok(trimmed)
}

/// Runs the service until SIGTERM or SIGINT; `listening` is told where once it accepts
/// connections.
pub fn serve(options: ServeOptions, listening: impl FnOnce(&Listening)) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let outcome = runtime.block_on(run(options, listening));
    // Engine threads stopped at a persisted step stay parked; the next start resumes them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome
}

async fn run(options: ServeOptions, listening: impl FnOnce(&Listening)) -> Result<(), ServerError> {
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (listener, addr) = bind(options.listen)?;
    let url = format!("{scheme}://{addr}");
    let metrics = options.metrics_listen.map(bind).transpose()?;
    let metrics_url = metrics
        .as_ref()
        .map(|(_, addr)| format!("{scheme}://{addr}/metrics"));
    let tls = match &options.tls {
        None => None,
        Some((cert, key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| ServerError::Tls {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                    source,
                })?,
        ),
    };
    let signals = Signals::install()?;
    let state = open_state(&options, &url, addr)?;
    let handles = [
        axum_server::Handle::<SocketAddr>::new(),
        axum_server::Handle::<SocketAddr>::new(),
    ];
    let workers = TaskTracker::new();
    let notifier = Arc::clone(&state.notifier);
    let (cancel, wake) = (state.cancel.clone(), Arc::clone(&state.deliveries));
    let deliveries = tokio::spawn(async move { notifier.run(cancel, wake).await });
    let deliveries = tokio::spawn(stop_deliveries(
        deliveries,
        state.cancel.clone(),
        options.grace,
    ));
    let background = [
        tokio::spawn(reconcile::run(Arc::clone(&state), workers.clone())),
        tokio::spawn(reconcile::fetch_loop(Arc::clone(&state))),
        tokio::spawn(stop_on_signal(
            signals,
            Arc::clone(&state),
            handles.clone(),
            options.grace,
        )),
    ];
    let [main_handle, metrics_handle] = handles;
    let api = async {
        let router = api::router(Arc::clone(&state));
        let served = serve_on(listener, tls.clone(), main_handle, router).await;
        // Whatever ended the main listener ends the metrics listener too.
        metrics_handle.graceful_shutdown(Some(options.grace));
        served
    };
    let scrape = async {
        match metrics {
            Some((listener, _)) => {
                let router = metrics::router(Arc::clone(&state));
                serve_on(listener, tls.clone(), metrics_handle.clone(), router).await
            }
            None => Ok(()),
        }
    };
    state.ready.store(true, Ordering::SeqCst);
    listening(&Listening { url, metrics_url });
    let (served, scraped) = tokio::join!(api, scrape);
    state.cancel.cancel();
    workers.close();
    if !state.drain.settle(options.grace).await {
        tracing::warn!(
            "shutdown: engine work still running after the grace period; the next start resumes it"
        );
    }
    if deliveries.await.is_err() {
        tracing::warn!("shutdown: the notification worker ended abnormally");
    }
    for task in background {
        task.abort();
    }
    release_state(&state);
    served.and(scraped).map_err(ServerError::Serve)
}

fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), ServerError> {
    let listen_error = |source| ServerError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    Ok((listener, local))
}

/// Serves `router` on `listener` (over TLS with `tls`) until `handle` shuts it down.
async fn serve_on(
    listener: std::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    handle: axum_server::Handle<SocketAddr>,
    router: axum::Router,
) -> std::io::Result<()> {
    let app = router.into_make_service();
    match tls {
        None => {
            let server = axum_server::from_tcp(listener)?;
            server.handle(handle).serve(app).await
        }
        Some(config) => {
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, config)?;
            server.handle(handle).serve(app).await
        }
    }
}

/// Once shutdown began, lets the notification worker finish the attempt under way for at most
/// `grace`; an attempt cut short is not recorded, so the next start sends it again with the
/// same id.
async fn stop_deliveries(
    deliveries: tokio::task::JoinHandle<()>,
    cancel: tokio_util::sync::CancellationToken,
    grace: Duration,
) {
    cancel.cancelled().await;
    let abort = deliveries.abort_handle();
    if tokio::time::timeout(grace, deliveries).await.is_err() {
        abort.abort();
        tracing::warn!(
            "shutdown: a notification was still being sent after the grace period; it is sent again on the next start"
        );
    }
}

/// Opens the state (once: every handler and task shares it), loads the pipeline and records
/// that this process holds the state.
fn open_state(
    options: &ServeOptions,
    url: &str,
    addr: SocketAddr,
) -> Result<Arc<AppState>, ServerError> {
    let store: Arc<dyn StateStore> = Arc::new(
        SqliteStore::open(&options.state_dir, DEFAULT_OPEN_WAIT)
            .map_err(crate::promotion::PromotionError::from)?,
    );
    let engine = Engine::new(
        &options.repo,
        Arc::clone(&store),
        loop_actor(),
        options.engine_options.clone(),
    )?;
    let source_branch = engine.source_branch()?;
    let config = engine.config_at_branch(&source_branch)?;
    let remotes = engine
        .git()
        .remotes()
        .map_err(crate::promotion::PromotionError::from)?;
    let remote = config
        .pipeline
        .output
        .remote
        .clone()
        .or_else(|| remotes.iter().find(|r| *r == "origin").cloned())
        .or_else(|| remotes.first().cloned());
    let record = ServerRecord {
        url: url.to_string(),
        pid: std::process::id(),
        host: Holder::current(LOOP_ACTOR).host,
        started_at: Utc::now(),
    };
    engine.store()?.set_server_record(&record)?;
    // The worker reads and writes the outbox through the service's one store; it makes no
    // webhook request inside a transaction, so sharing it holds nobody up.
    let shared = Arc::clone(&store);
    let open: OpenStore = Arc::new(move || Ok(Arc::clone(&shared)));
    let notifier = Worker::new(
        open,
        Targets::default(),
        WorkerOptions {
            ui_url: ui_url(options.public_url.as_deref(), url, addr),
            clock: engine.clock().unwrap_or_else(|| Arc::new(Utc::now)),
            ..WorkerOptions::default()
        },
    )
    .map_err(ServerError::Notify)?;
    let state = AppState::new(AppSettings {
        store,
        engine: engine.clone(),
        source_branch,
        remote,
        fetch_interval: options.fetch_interval,
        period: options.period,
        webhook_secret: options.webhook_secret.clone(),
        tls: options.tls.is_some(),
        round_hook: options.round_hook.clone(),
        config,
        notifier: Arc::new(notifier),
    });
    // Loads the policies into the state, resolving the webhooks before the worker starts.
    state
        .config(&engine)
        .map_err(|err| ServerError::Config(err.message().to_string()))?;
    Ok(state)
}

/// The base URL of links in notifications: `public`, else the listening URL unless the
/// service listens on every address (a link to 0.0.0.0 leads nowhere).
fn ui_url(public: Option<&str>, url: &str, addr: SocketAddr) -> Option<String> {
    match public {
        Some(public) => Some(public.trim_end_matches('/').to_string()),
        None if addr.ip().is_unspecified() => {
            tracing::warn!(
                "notifications: no --public-url, and the service listens on every address: Slack messages carry no link"
            );
            None
        }
        None => Some(url.to_string()),
    }
}

fn release_state(state: &AppState) {
    let cleared = state
        .loop_engine()
        .store()
        .and_then(|store| store.clear_server_record(std::process::id()));
    if let Err(err) = cleared {
        tracing::warn!("failed to remove the server record: {err}");
    }
}

/// SIGTERM and SIGINT, listened for before the service says it listens, so that neither can
/// end it with the default action.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServerError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(ServerError::Runtime)?,
            int: signal(SignalKind::interrupt()).map_err(ServerError::Runtime)?,
        })
    }
}

/// On SIGTERM or SIGINT: stop new work and let connections finish within `grace`.
async fn stop_on_signal(
    mut signals: Signals,
    state: Arc<AppState>,
    handles: [axum_server::Handle<SocketAddr>; 2],
    grace: Duration,
) {
    tokio::select! {
        _ = signals.term.recv() => {}
        _ = signals.int.recv() => {}
    }
    tracing::info!("shutting down");
    state.cancel.cancel();
    for handle in handles {
        handle.graceful_shutdown(Some(grace));
    }
}
