//! The state every request and background task shares: where the repository and its state
//! live, the engine options, the event bus, the reconcile loop's wake-up and heartbeat, and
//! the shutdown token.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use crate::access::Authenticator;
use crate::notify::{Targets, Worker};
use crate::pipeline::{Config, Notifications};
use crate::promotion::{Actor, Engine, EngineEvent};
use crate::state::StateStore;

/// One state change, as the event stream carries it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerEvent {
    /// `promotion.<state>`, `release.created`, `review.approve`, `stage.paused`, …
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Gate progress (`gate.started`, `gate.observed`, `gate.finished`).
    #[serde(flatten)]
    pub gate: Option<super::events::GateUpdate>,
    pub at: DateTime<Utc>,
}

impl ServerEvent {
    pub fn new(kind: impl Into<String>) -> ServerEvent {
        ServerEvent {
            kind: kind.into(),
            stage: None,
            revision: None,
            promotion: None,
            by: None,
            gate: None,
            at: Utc::now(),
        }
    }

    pub fn stage(mut self, stage: &str) -> ServerEvent {
        self.stage = Some(stage.to_string());
        self
    }

    pub fn revision(mut self, revision: &str) -> ServerEvent {
        self.revision = Some(revision.to_string());
        self
    }

    pub fn by(mut self, by: &str) -> ServerEvent {
        self.by = Some(by.to_string());
        self
    }

    /// The event of a change the engine persisted.
    pub fn from_engine(event: &EngineEvent) -> ServerEvent {
        match event {
            EngineEvent::Promotion {
                id,
                stage,
                revision,
                state,
                ..
            } => {
                let mut e = ServerEvent::new(format!("promotion.{state}"))
                    .stage(stage)
                    .revision(revision);
                e.promotion = Some(id.clone());
                e
            }
            EngineEvent::ReleaseCreated { id } => ServerEvent::new("release.created").revision(id),
            EngineEvent::Review {
                stage,
                revision,
                verdict,
                by,
                withdrawn,
            } => {
                let noun = crate::promotion::review_noun(*verdict);
                let kind = if *withdrawn {
                    format!("review.{noun}.withdrawn")
                } else {
                    format!("review.{noun}")
                };
                ServerEvent::new(kind)
                    .stage(stage)
                    .revision(revision)
                    .by(by)
            }
        }
    }
}

/// Engine work in flight, so shutdown can wait for it to reach a persisted state.
#[derive(Default)]
pub struct Drain {
    active: AtomicUsize,
    changed: Notify,
}

thread_local! {
    static PARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Drain {
    fn enter(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    fn leave(&self) {
        if !PARKED.with(|p| p.get()) {
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.changed.notify_waiters();
        }
    }

    /// Stops the calling engine thread for good after a persisted step, once shutdown began:
    /// the next step starts only in the next process, which resumes it.
    pub fn park(&self) -> ! {
        if !PARKED.with(|p| p.replace(true)) {
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.changed.notify_waiters();
        }
        loop {
            std::thread::park();
        }
    }

    /// Waits until no engine work runs (or parked), at most `grace`; says whether it got there.
    pub async fn settle(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if self.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

/// Everything the handlers and background tasks share.
pub struct AppState {
    /// Every handler and task works through this engine, acting as the loop (`engine` gives
    /// it for a caller).
    loop_engine: Engine,
    /// The branch holding `environments/` and `policies/`.
    pub source_branch: String,
    /// The remote fetched every `fetch_interval`, when the repository has one.
    pub remote: Option<String>,
    pub fetch_interval: Duration,
    pub events: broadcast::Sender<ServerEvent>,
    /// Wakes the reconcile loop.
    pub wake: Notify,
    /// Bumped by every state change; the loop compares it to know whether to look again.
    pub generation: AtomicU64,
    /// When the reconcile loop last went round (milliseconds since the epoch).
    pub heartbeat: AtomicI64,
    /// The longest the loop sleeps between rounds.
    pub period: Duration,
    pub ready: AtomicBool,
    pub cancel: CancellationToken,
    pub drain: Drain,
    pub webhook_secret: Option<Vec<u8>>,
    /// Turns bearer tokens into identities.
    pub authenticator: Authenticator,
    /// The web UI's signed-in browsers.
    pub sessions: super::ui::session::Sessions,
    /// Delivers the notification outbox.
    pub notifier: Arc<Worker>,
    /// Wakes the notification worker: a change may have enqueued deliveries.
    pub deliveries: Arc<Notify>,
    /// Called at the start of each reconcile round (see `ServeOptions::round_hook`).
    pub round_hook: Option<super::RoundHook>,
    /// The stages someone in this process is driving now: a reconcile worker or a request
    /// promoting or rolling back. One at a time per stage, so a request's promotion is checked
    /// by the request, never raced by the loop.
    pub stage_work: Mutex<BTreeSet<String>>,
    config: Mutex<Option<(String, Arc<Config>)>>,
}

/// How long a request waits for a reconcile worker to let go of its stage.
const HOLD_WAIT: Duration = Duration::from_secs(2);

/// A stage held in [`AppState::stage_work`]; released (and the loop woken) when dropped.
pub struct StageWork<'a> {
    state: &'a AppState,
    stage: String,
}

impl AppState {
    /// Holds `stage` once no one else in this process drives it, waiting up to
    /// [`HOLD_WAIT`]; `None` when a reconcile worker keeps it longer (a gate is running:
    /// the request then meets that promotion in the store and answers busy). Called on a
    /// blocking thread.
    pub fn hold_stage(&self, stage: &str) -> Option<StageWork<'_>> {
        let deadline = std::time::Instant::now() + HOLD_WAIT;
        loop {
            {
                let mut work = self.stage_work.lock().unwrap_or_else(|p| p.into_inner());
                if work.insert(stage.to_string()) {
                    return Some(StageWork {
                        state: self,
                        stage: stage.to_string(),
                    });
                }
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for StageWork<'_> {
    fn drop(&mut self) {
        self.state
            .stage_work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.stage);
        self.state.wake.notify_one();
    }
}

/// The webhooks of `notifications`, their URLs and secrets read from this process's
/// environment and files; a webhook that cannot be resolved is logged (its deliveries fail
/// with the reason and are retried).
pub fn notification_targets(notifications: &Notifications) -> Targets {
    let targets = Targets::resolve(notifications, &|name| std::env::var(name).ok());
    for (webhook, why) in targets.problems() {
        tracing::warn!(webhook = %webhook, "notifications: {why}");
    }
    targets
}

/// The name the reconcile loop acts as.
pub const LOOP_ACTOR: &str = "ferry-serve";

/// The actor of the reconcile loop and other work of the service's own.
pub fn loop_actor() -> Actor {
    Actor::local(LOOP_ACTOR)
}

/// What [`AppState::new`] needs.
pub struct AppSettings {
    /// The one state store the service keeps open (the authenticator reads tokens from it).
    pub store: Arc<dyn StateStore>,
    /// The engine over `store`, acting as the loop; its options are those of every engine
    /// the service uses.
    pub engine: Engine,
    pub source_branch: String,
    pub remote: Option<String>,
    pub fetch_interval: Duration,
    pub period: Duration,
    pub webhook_secret: Option<Vec<u8>>,
    /// Whether the service speaks HTTPS (session cookies are then `Secure`).
    pub tls: bool,
    pub round_hook: Option<super::RoundHook>,
    /// The pipeline and policies at start.
    pub config: Arc<Config>,
    /// The notification worker, sending to the webhooks of `config`.
    pub notifier: Arc<Worker>,
}

impl AppState {
    /// The shared state; the engine's step hook feeds the event bus and wakes the loop.
    pub fn new(settings: AppSettings) -> Arc<AppState> {
        let (events, _) = broadcast::channel(1024);
        Arc::new_cyclic(|weak: &std::sync::Weak<AppState>| {
            let events_target = weak.clone();
            let weak = weak.clone();
            let authenticator = Authenticator::new(
                settings.config.access.clone(),
                Arc::clone(&settings.store),
                reqwest::Client::new(),
            );
            let previous = settings.engine.options().step_hook.clone();
            let mut engine_options = settings.engine.options().clone();
            engine_options.step_hook = Some(Arc::new(move |step: &str| {
                if let Some(previous) = &previous {
                    previous(step);
                }
                if let Some(state) = weak.upgrade()
                    && state.cancel.is_cancelled()
                {
                    state.drain.park();
                }
            }));
            engine_options.progress = Some(Arc::new(super::events::GateEvents::new(
                events_target.clone(),
            )));
            let target = events_target;
            engine_options.events = Some(Arc::new(move |event: &EngineEvent| {
                if let Some(state) = target.upgrade() {
                    state.changed(ServerEvent::from_engine(event));
                }
            }));
            AppState {
                loop_engine: settings.engine.with_options(engine_options),
                source_branch: settings.source_branch,
                remote: settings.remote,
                fetch_interval: settings.fetch_interval,
                events,
                wake: Notify::new(),
                generation: AtomicU64::new(0),
                heartbeat: AtomicI64::new(Utc::now().timestamp_millis()),
                period: settings.period,
                ready: AtomicBool::new(false),
                cancel: CancellationToken::new(),
                drain: Drain::default(),
                webhook_secret: settings.webhook_secret,
                authenticator,
                sessions: super::ui::session::Sessions::new(settings.tls),
                notifier: settings.notifier,
                deliveries: Arc::new(Notify::new()),
                round_hook: settings.round_hook,
                stage_work: Mutex::default(),
                config: Mutex::new(None),
            }
        })
    }

    /// The service's engine (one repository, one open state store) acting as `actor`.
    pub fn engine(&self, actor: Actor) -> Result<Engine, ApiError> {
        Ok(self.loop_engine.acting_as(actor))
    }

    /// The service's engine acting as the loop.
    pub fn loop_engine(&self) -> &Engine {
        &self.loop_engine
    }

    /// Runs engine work on a blocking thread, counted for shutdown.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if self.cancel.is_cancelled() {
            return Err(ApiError::unavailable("the service is shutting down"));
        }
        let state = Arc::clone(self);
        state.drain.enter();
        let joined = tokio::task::spawn_blocking(move || {
            struct Leave<'a>(&'a Drain);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    self.0.leave();
                }
            }
            let _leave = Leave(&state.drain);
            work(&state)
        })
        .await;
        joined.unwrap_or_else(|err| Err(ApiError::internal(format!("engine task failed: {err}"))))
    }

    /// The pipeline and policies at the source branch tip, loaded again only when it moved.
    pub fn config(&self, engine: &Engine) -> Result<Arc<Config>, ApiError> {
        let tip = engine
            .git()
            .branch_tip(&self.source_branch)
            .map_err(crate::promotion::PromotionError::from)?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "the source branch {} has no commits",
                    self.source_branch
                ))
            })?;
        let mut cache = self.config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, config)) = cache.as_ref()
            && *cached == tip
        {
            return Ok(Arc::clone(config));
        }
        let moved = cache.is_some();
        let config = engine.config_at(&tip)?;
        *cache = Some((tip.clone(), Arc::clone(&config)));
        drop(cache);
        self.authenticator.set_policy(config.access.clone());
        self.notifier
            .set_targets(notification_targets(&config.notifications));
        if moved {
            self.changed(ServerEvent::new("source.moved").revision(&tip));
        }
        Ok(config)
    }

    /// Publishes a state change and wakes the reconcile loop.
    pub fn changed(&self, event: ServerEvent) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // No subscribers is fine: nobody watches the stream right now.
        let _ = self.events.send(event);
        self.wake.notify_one();
        self.deliveries.notify_one();
    }

    /// Records that the reconcile loop went round.
    pub fn beat(&self) {
        self.heartbeat
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
    }

    /// Whether the reconcile loop went round within twice its period.
    pub fn healthy(&self, now: DateTime<Utc>) -> bool {
        let last = self.heartbeat.load(Ordering::SeqCst);
        let age = now.timestamp_millis().saturating_sub(last);
        let limit = i64::try_from(self.period.as_millis().saturating_mul(2)).unwrap_or(i64::MAX);
        age < limit
    }
}
