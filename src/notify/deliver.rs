//! Delivering the outbox: resolving webhook URLs and secrets, building the request body of
//! each format, signing, sending, and retrying with a jittered, capped exponential backoff
//! until a delivery is 24 hours old.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::NotifyError;
use super::event::Payload;
use super::outbox::{self, Attempt, Delivery};
use super::slack;
use crate::pipeline::{Notifications, ValueFrom, WebhookFormat};
use crate::state::{StateError, StateStore, StateStoreExt};

/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "X-Ferry-Delivery";
/// The header carrying the body's signature (`sha256=<hex>`), on `json` webhooks.
pub const SIGNATURE_HEADER: &str = "X-Ferry-Signature-256";
/// The header carrying the event name.
pub const EVENT_HEADER: &str = "X-Ferry-Event";

/// A webhook with its URL (and secret) resolved.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub format: WebhookFormat,
    pub url: String,
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs and secrets of webhooks are credentials: never in logs.
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The webhooks deliveries go to, by name; a webhook whose URL or secret could not be read
/// maps to why, and its deliveries fail (and are retried) with that error.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    targets: BTreeMap<String, Result<Target, String>>,
}

impl Targets {
    /// Resolves every webhook of `notifications`: `env` looks up environment variables (the
    /// caller's, since the library reads none), files are read relative to the working
    /// directory.
    pub fn resolve(notifications: &Notifications, env: &dyn Fn(&str) -> Option<String>) -> Targets {
        let read = |from: &ValueFrom| -> Result<String, String> {
            let value = match from {
                ValueFrom::Env(name) => env(name).ok_or_else(|| format!("{from} is not set"))?,
                ValueFrom::File(path) => std::fs::read_to_string(path)
                    .map_err(|err| format!("failed to read {from}: {err}"))?,
            };
            let value = value.trim_end_matches(['\n', '\r']).to_string();
            if value.is_empty() {
                return Err(format!("{from} is empty"));
            }
            Ok(value)
        };
        let targets = notifications
            .webhooks
            .iter()
            .map(|w| {
                let target = read(&w.url_from).and_then(|url| {
                    let secret = w.secret_from.as_ref().map(&read).transpose()?;
                    Ok(Target {
                        name: w.name.clone(),
                        format: w.format,
                        url,
                        secret: secret.map(String::into_bytes),
                    })
                });
                (w.name.clone(), target)
            })
            .collect();
        Targets { targets }
    }

    /// The problems of webhooks that could not be resolved: (webhook, why).
    pub fn problems(&self) -> Vec<(String, String)> {
        self.targets
            .iter()
            .filter_map(|(name, t)| t.as_ref().err().map(|e| (name.clone(), e.clone())))
            .collect()
    }

    fn get(&self, name: &str) -> Result<&Target, String> {
        match self.targets.get(name) {
            Some(Ok(target)) => Ok(target),
            Some(Err(why)) => Err(format!("webhook {name}: {why}")),
            None => Err(format!(
                "webhook {name} is not in policies/notifications.yaml (any more)"
            )),
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`: the value of [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// How the worker retries.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The pause after the first failed attempt; it doubles after each further one.
    pub first: Duration,
    /// The longest pause.
    pub cap: Duration,
    /// How long a delivery is tried before it is given up as failed.
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(10 * 60),
            give_up_after: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl Retry {
    /// When to try again after `attempts` failed attempts of a delivery created at `created`,
    /// failing now; `None` to give up. `jitter` in [0, 1) spreads retries: the pause is
    /// between half and all of the exponential step.
    pub fn next_attempt(
        &self,
        created: DateTime<Utc>,
        attempts: u32,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let deadline = created + chrono::Duration::from_std(self.give_up_after).ok()?;
        if now >= deadline {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let step = self.first.saturating_mul(1 << exponent).min(self.cap);
        let pause = step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        let at = now + chrono::Duration::from_std(pause).ok()?;
        Some(at.min(deadline))
    }
}

/// What the worker needs besides the store and the targets.
#[derive(Clone)]
pub struct WorkerOptions {
    /// The web UI's base URL, for links in messages.
    pub ui_url: Option<String>,
    pub retry: Retry,
    /// How long one request may take.
    pub timeout: Duration,
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            ui_url: None,
            retry: Retry::default(),
            timeout: Duration::from_secs(10),
            clock: Arc::new(Utc::now),
        }
    }
}

/// Opens the state store for one step of the worker: a host that keeps its store open returns
/// it; one whose store allows one opener at a time opens it, so no request to a webhook is
/// made while the store is held.
pub type OpenStore = Arc<dyn Fn() -> Result<Arc<dyn StateStore>, StateError> + Send + Sync>;

/// Sends the outbox's due deliveries, at least once each.
pub struct Worker {
    open: OpenStore,
    targets: RwLock<Targets>,
    options: WorkerOptions,
    client: reqwest::Client,
}

impl Worker {
    /// A worker over the store `open` gives, sending to `targets`.
    pub fn new(
        open: OpenStore,
        targets: Targets,
        options: WorkerOptions,
    ) -> Result<Worker, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Worker {
            open,
            targets: RwLock::new(targets),
            options,
            client,
        })
    }

    /// Sends from now on to `targets` (the webhooks of a changed `policies/notifications.yaml`).
    pub fn set_targets(&self, targets: Targets) {
        *self.targets.write().unwrap_or_else(|p| p.into_inner()) = targets;
    }

    /// Attempts every delivery that is due now, once; returns when the next one falls due.
    pub async fn deliver_due(&self) -> Result<Option<DateTime<Utc>>, NotifyError> {
        self.deliver_due_until(&CancellationToken::new()).await
    }

    /// Like [`Worker::deliver_due`], but starts no further attempt once `cancel` fired (a
    /// delivery not attempted stays pending for the next pass).
    async fn deliver_due_until(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, NotifyError> {
        let now = (self.options.clock)();
        let mut next: Option<DateTime<Utc>> = None;
        let pending = self.with_store(|store| outbox::pending(store)).await?;
        for delivery in pending {
            if cancel.is_cancelled() {
                break;
            }
            let due = delivery.next_attempt_at.unwrap_or(delivery.created_at);
            if due > now {
                next = Some(next.map_or(due, |n| n.min(due)));
                continue;
            }
            let attempt = self.attempt(&delivery).await;
            if let Attempt::Failed { error, retry_at } = &attempt {
                tracing::warn!(delivery = %delivery.id, webhook = %delivery.webhook, "delivery failed: {error}");
                if let Some(at) = retry_at {
                    next = Some(next.map_or(*at, |n| n.min(*at)));
                }
            }
            let seq = delivery.seq;
            self.with_store(move |store| {
                store.transaction(|txn| outbox::record(txn, seq, &attempt))
            })
            .await?;
        }
        Ok(next)
    }

    /// Runs `work` on the store on a blocking thread: opening it may wait for another process.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn StateStore) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, NotifyError> {
        let open = Arc::clone(&self.open);
        let joined = tokio::task::spawn_blocking(move || work(open()?.as_ref())).await;
        match joined {
            Ok(outcome) => Ok(outcome?),
            Err(err) => Err(NotifyError::Task(err.to_string())),
        }
    }

    async fn attempt(&self, delivery: &Delivery) -> Attempt {
        match self.send(delivery).await {
            Ok(()) => Attempt::Delivered {
                at: (self.options.clock)(),
            },
            Err(error) => {
                let now = (self.options.clock)();
                let retry_at = self.options.retry.next_attempt(
                    delivery.created_at,
                    delivery.attempts + 1,
                    now,
                    jitter(),
                );
                Attempt::Failed { error, retry_at }
            }
        }
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), String> {
        let target = self
            .targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&delivery.webhook)?
            .clone();
        let body = body(
            target.format,
            &delivery.payload,
            self.options.ui_url.as_deref(),
        );
        let mut request = self
            .client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, &delivery.id)
            .header(EVENT_HEADER, &delivery.payload.event);
        if let Some(secret) = &target.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| error_chain(&err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.trim().chars().take(200).collect();
        Err(if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        })
    }

    /// Delivers until `cancel` fires: at once when `wake` is notified (a change enqueued
    /// something), else when the next delivery falls due. Once `cancel` fired no new attempt
    /// starts; one under way is finished and recorded.
    pub async fn run(&self, cancel: CancellationToken, wake: Arc<tokio::sync::Notify>) {
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let next = match self.deliver_due_until(&cancel).await {
                Ok(next) => next,
                Err(err) => {
                    tracing::error!("failed to read the outbox: {err}");
                    Some((self.options.clock)() + chrono::Duration::seconds(5))
                }
            };
            let pause = next
                .map(|at| (at - (self.options.clock)()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The request body of `payload` for a webhook of `format`.
pub fn body(format: WebhookFormat, payload: &Payload, ui_url: Option<&str>) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Json => serde_json::to_value(payload).unwrap_or_default(),
        WebhookFormat::Slack => slack::message(payload, ui_url),
    };
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u16::from_be_bytes(bytes)) / 65536.0
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap_then_give_up_after_a_day() {
        let retry = Retry::default();
        let created = at("2026-12-01T10:00:00Z");
        let now = created;
        let full = |attempts| retry.next_attempt(created, attempts, now, 1.0);
        assert_eq!(full(1), Some(at("2026-12-01T10:00:02Z")));
        assert_eq!(full(2), Some(at("2026-12-01T10:00:04Z")));
        assert_eq!(full(3), Some(at("2026-12-01T10:00:08Z")));
        assert_eq!(full(20), Some(at("2026-12-01T10:10:00Z")));
        let half = retry.next_attempt(created, 3, now, 0.0);
        assert_eq!(half, Some(at("2026-12-01T10:00:04Z")));
        let late = at("2026-12-02T09:59:00Z");
        assert_eq!(
            retry.next_attempt(created, 40, late, 1.0),
            Some(at("2026-12-02T10:00:00Z"))
        );
        assert_eq!(
            retry.next_attempt(created, 41, at("2026-12-02T10:00:00Z"), 0.3),
            None
        );
    }

    #[test]
    fn unresolvable_webhooks_name_what_is_missing() {
        let notifications = Notifications {
            webhooks: vec![crate::pipeline::Webhook {
                name: "ops".into(),
                format: WebhookFormat::Json,
                url_from: ValueFrom::Env("OPS_URL".into()),
                secret_from: Some(ValueFrom::Env("OPS_SECRET".into())),
                events: Vec::new(),
                stages: Vec::new(),
                declared_at: crate::pipeline::FileLocation::file("policies/notifications.yaml"),
            }],
        };
        let env = |name: &str| (name == "OPS_URL").then(|| "http://127.0.0.1:9/".to_string());
        let targets = Targets::resolve(&notifications, &env);
        assert_eq!(
            targets.problems(),
            vec![(
                "ops".to_string(),
                "environment variable OPS_SECRET is not set".to_string()
            )]
        );
    }

    /// A receiver on 127.0.0.1 answering 200 to every request; sends each request's head and
    /// body on the channel.
    async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut seen = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            let _ = tx.send(text.clone());
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            seen.clear();
                        }
                    }
                }
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn the_worker_delivers_when_woken_and_stops_when_cancelled() {
        let store: Arc<dyn StateStore> = Arc::new(crate::state::MemStore::new());
        let notifications = Notifications {
            webhooks: vec![crate::pipeline::Webhook {
                name: "ops".into(),
                format: WebhookFormat::Json,
                url_from: ValueFrom::Env("OPS_URL".into()),
                secret_from: Some(ValueFrom::Env("OPS_SECRET".into())),
                events: Vec::new(),
                stages: Vec::new(),
                declared_at: crate::pipeline::FileLocation::file("policies/notifications.yaml"),
            }],
        };
        let (url, mut received) = receiver().await;
        let env = move |name: &str| match name {
            "OPS_URL" => Some(url.clone()),
            "OPS_SECRET" => Some("key".to_string()),
            _ => None,
        };
        let targets = Targets::resolve(&notifications, &env);
        let shared = Arc::clone(&store);
        let open: OpenStore = Arc::new(move || Ok(Arc::clone(&shared)));
        let worker = Worker::new(open, targets, WorkerOptions::default()).expect("worker");
        let cancel = CancellationToken::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let wake_for_worker = Arc::clone(&wake);
        let worker = Arc::new(worker);
        let runner = Arc::clone(&worker);
        let stop = cancel.clone();
        let running =
            tokio::spawn(async move { runner.run(stop, Arc::clone(&wake_for_worker)).await });

        let event =
            super::super::Event::stage_paused(Utc::now(), "dana", Some("prod"), true, "incident");
        let ids = store
            .transaction(|txn| super::outbox::enqueue(txn, &notifications, &event))
            .expect("enqueue");
        wake.notify_one();
        let request = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("delivered within a minute")
            .expect("a request");
        let body = request
            .split_once("\r\n\r\n")
            .expect("a body")
            .1
            .to_string();
        assert!(
            request
                .to_ascii_lowercase()
                .contains(&format!("x-ferry-delivery: {}", ids[0])),
            "{request}"
        );
        let expected = format!(
            "x-ferry-signature-256: {}",
            signature(b"key", body.as_bytes())
        );
        assert!(
            request.to_ascii_lowercase().contains(&expected),
            "{request}"
        );
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .expect("stops once cancelled")
            .expect("no panic");
        let delivered = super::outbox::all(store.as_ref()).expect("outbox");
        assert_eq!(delivered[0].state, super::outbox::DeliveryState::Delivered);
        assert_eq!(delivered[0].attempts, 1);
    }
}
