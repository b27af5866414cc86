//! Notifications: the events ferry reports, the outbox they are written to (in the same
//! transaction as the change they report), and the worker that delivers them to webhooks at
//! least once, each with a stable delivery id.
//!
//! Which webhooks exist and what they want is `policies/notifications.yaml`
//! ([`crate::pipeline::Notifications`]); their URLs and secrets are resolved by the caller
//! ([`Targets::resolve`]), since the library reads no environment variables.

mod deliver;
mod event;
mod outbox;
mod slack;

pub use deliver::{
    DELIVERY_HEADER, EVENT_HEADER, OpenStore, Retry, SIGNATURE_HEADER, Target, Targets, Worker,
    WorkerOptions, body, signature,
};
pub use event::{Event, Payload};
pub use outbox::{
    Attempt, Delivery, DeliveryState, OutboxCounts, all, counts, counts_by_webhook, enqueue,
    listing, pending, record,
};

use crate::state::StateError;

/// What can go wrong while delivering notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("state store")]
    State(#[from] StateError),
    #[error("failed to build the HTTP client for webhooks")]
    Client(#[source] reqwest::Error),
    #[error("the outbox task failed: {0}")]
    Task(String),
}
