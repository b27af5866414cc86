//! `policies/notifications.yaml`: where ferry sends word of what happens (webhooks), in what
//! shape, and for which events and stages. The file names where URLs and secrets come from
//! (`urlFrom`, `secretFrom`); it never holds them, and ferry's library never reads them: the
//! CLI or the server resolves them.

use std::fmt;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{FileLocation, PipelineError};
use super::raw::Document;
use super::stage::Pipeline;
use super::yaml::{self, at};
use crate::overlay::{EntryKind, FileSource};

/// The notifications file.
pub const NOTIFICATIONS_FILE: &str = "policies/notifications.yaml";

/// What can be notified about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    ReleaseCreated,
    PromotionBlocked,
    ApprovalGranted,
    PromotionSucceeded,
    PromotionFailed,
    StagePaused,
    StageResumed,
}

impl EventKind {
    /// Every event kind, in the order the docs list them.
    pub const ALL: [EventKind; 7] = [
        EventKind::ReleaseCreated,
        EventKind::PromotionBlocked,
        EventKind::ApprovalGranted,
        EventKind::PromotionSucceeded,
        EventKind::PromotionFailed,
        EventKind::StagePaused,
        EventKind::StageResumed,
    ];

    /// The event's name as written in files and payloads: `promotion.blocked`, …
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ReleaseCreated => "release.created",
            EventKind::PromotionBlocked => "promotion.blocked",
            EventKind::ApprovalGranted => "approval.granted",
            EventKind::PromotionSucceeded => "promotion.succeeded",
            EventKind::PromotionFailed => "promotion.failed",
            EventKind::StagePaused => "stage.paused",
            EventKind::StageResumed => "stage.resumed",
        }
    }

    /// The event kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// ferry's own JSON payload, signed with HMAC-SHA256.
    Json,
    /// A Slack incoming-webhook message.
    Slack,
}

impl WebhookFormat {
    /// `json` or `slack`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }
}

/// Where a value that must not be committed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    /// The environment variable of that name (of the process that delivers).
    Env(String),
    /// The content of that file, without a trailing newline.
    File(String),
}

impl fmt::Display for ValueFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueFrom::Env(name) => write!(f, "environment variable {name}"),
            ValueFrom::File(path) => write!(f, "file {path}"),
        }
    }
}

/// One webhook of the notifications file.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub format: WebhookFormat,
    pub url_from: ValueFrom,
    /// The HMAC key of `json` webhooks.
    pub secret_from: Option<ValueFrom>,
    /// The events it receives; empty means all.
    pub events: Vec<EventKind>,
    /// The stages whose events it receives; empty means all. Events about no stage
    /// (`release.created`) reach every webhook whose event filter takes them.
    pub stages: Vec<String>,
    pub declared_at: FileLocation,
}

impl Webhook {
    /// Whether an event of `kind` about `stage` (if any) goes to this webhook.
    pub fn wants(&self, kind: EventKind, stage: Option<&str>) -> bool {
        let event_ok = self.events.is_empty() || self.events.contains(&kind);
        let stage_ok = match stage {
            Some(stage) => self.stages.is_empty() || self.stages.iter().any(|s| s == stage),
            None => true,
        };
        event_ok && stage_ok
    }
}

/// The validated notifications file: none when the repository has no such file.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    pub webhooks: Vec<Webhook>,
}

impl Notifications {
    /// The webhook named `name`.
    pub fn webhook(&self, name: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|w| w.name == name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    webhooks: Vec<Spanned<RawWebhook>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWebhook {
    name: Spanned<String>,
    format: Spanned<String>,
    url_from: Spanned<RawValueFrom>,
    secret_from: Option<Spanned<RawValueFrom>>,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    #[serde(default)]
    stages: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValueFrom {
    env: Option<String>,
    file: Option<String>,
}

/// Loads `policies/notifications.yaml` from `source` if it exists.
pub(crate) fn load(
    source: &dyn FileSource,
    pipeline: &Pipeline,
) -> Result<Notifications, PipelineError> {
    let entry = source
        .entry(NOTIFICATIONS_FILE)
        .map_err(|source| PipelineError::Read {
            path: NOTIFICATIONS_FILE.to_string(),
            source,
        })?;
    if entry != Some(EntryKind::File) {
        return Ok(Notifications::default());
    }
    validate(
        NOTIFICATIONS_FILE,
        yaml::load(source, NOTIFICATIONS_FILE)?,
        pipeline,
    )
}

fn validate(
    path: &str,
    doc: Document<RawSpec>,
    pipeline: &Pipeline,
) -> Result<Notifications, PipelineError> {
    super::check_header(path, &doc.api_version, &doc.kind, "Notifications")?;
    let mut webhooks: Vec<Webhook> = Vec::new();
    for (i, raw) in doc.spec.webhooks.iter().enumerate() {
        let webhook = validate_webhook(path, i, &raw.value, pipeline)?;
        if webhooks.iter().any(|w| w.name == webhook.name) {
            return Err(PipelineError::invalid(
                at(path, &raw.value.name),
                format!("spec.webhooks[{i}].name"),
                format!("webhook `{}` is declared twice", webhook.name),
            ));
        }
        webhooks.push(Webhook {
            declared_at: at(path, raw),
            ..webhook
        });
    }
    Ok(Notifications { webhooks })
}

fn validate_webhook(
    path: &str,
    i: usize,
    raw: &RawWebhook,
    pipeline: &Pipeline,
) -> Result<Webhook, PipelineError> {
    let field = |name: &str| format!("spec.webhooks[{i}].{name}");
    let name = raw.name.value.trim().to_string();
    if !super::is_stage_name(&name) {
        return Err(PipelineError::invalid(
            at(path, &raw.name),
            field("name"),
            format!("`{name}` is not a valid name (lower-case letters, digits and `-`)"),
        ));
    }
    let format = match raw.format.value.as_str() {
        "json" => WebhookFormat::Json,
        "slack" => WebhookFormat::Slack,
        other => {
            return Err(PipelineError::invalid(
                at(path, &raw.format),
                field("format"),
                format!("unknown format `{other}`; expected json or slack"),
            ));
        }
    };
    let url_from = value_from(path, &raw.url_from, field("urlFrom"))?;
    let secret_from = raw
        .secret_from
        .as_ref()
        .map(|s| value_from(path, s, field("secretFrom")))
        .transpose()?;
    match (format, &secret_from, &raw.secret_from) {
        (WebhookFormat::Json, None, _) => {
            return Err(PipelineError::invalid(
                at(path, &raw.format),
                field("secretFrom"),
                "a json webhook needs secretFrom ({env: NAME} or {file: PATH}): its deliveries are signed",
            ));
        }
        (WebhookFormat::Slack, Some(_), Some(spanned)) => {
            return Err(PipelineError::invalid(
                at(path, spanned),
                field("secretFrom"),
                "slack webhooks are not signed: the secret is their URL (urlFrom)",
            ));
        }
        _ => {}
    }
    let events = raw
        .events
        .iter()
        .enumerate()
        .map(|(j, e)| {
            EventKind::parse(e.value.trim()).ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                PipelineError::invalid(
                    at(path, e),
                    format!("spec.webhooks[{i}].events[{j}]"),
                    format!("unknown event `{}`; known: {}", e.value, known.join(", ")),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stages = raw
        .stages
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let stage = s.value.trim();
            if pipeline.stage(stage).is_some() {
                return Ok(stage.to_string());
            }
            let known: Vec<&str> = pipeline.stages().iter().map(|s| s.name.as_str()).collect();
            Err(PipelineError::invalid(
                at(path, s),
                format!("spec.webhooks[{i}].stages[{j}]"),
                format!(
                    "unknown stage `{stage}`; the pipeline has: {}",
                    known.join(", ")
                ),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Webhook {
        name,
        format,
        url_from,
        secret_from,
        events,
        stages,
        declared_at: FileLocation::file(path),
    })
}

fn value_from(
    path: &str,
    raw: &Spanned<RawValueFrom>,
    field: String,
) -> Result<ValueFrom, PipelineError> {
    let invalid = |message: &str| PipelineError::invalid(at(path, raw), field.clone(), message);
    match (&raw.value.env, &raw.value.file) {
        (Some(env), None) if !env.trim().is_empty() => Ok(ValueFrom::Env(env.trim().to_string())),
        (None, Some(file)) if !file.trim().is_empty() => {
            Ok(ValueFrom::File(file.trim().to_string()))
        }
        (Some(_), Some(_)) => Err(invalid("give either env or file, not both")),
        _ => Err(invalid(
            "expected {env: NAME} or {file: PATH} (a value that is not committed)",
        )),
    }
}
