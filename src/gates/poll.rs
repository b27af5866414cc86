//! The polling loop every gate shares: observe at the interval until pass, definitive
//! failure or timeout, report each observation, and word the result.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{
    GateContext, GateError, GateResult, GateStatus, Observation, ObservationState, ProgressSink,
    kind_name,
};
use crate::pipeline::GateSpec;

/// How long the first observation of a gate may take when its timeout is shorter.
const FIRST_OBSERVATION_WAIT: Duration = Duration::from_secs(30);

/// What one observation found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The change has not arrived yet; keep polling.
    Pending(String),
    /// The check holds but must hold longer; keep polling.
    Holding(String),
    /// The gate passed.
    Pass(String),
    /// The check does not hold yet; keep polling.
    Failing(String),
    /// The check failed for good.
    Fail(String),
    /// Could not observe; retry.
    Error(GateError),
    /// Can never observe (bad configuration, bad query); stop.
    Abort(GateError),
}

/// A gate that is observed repeatedly.
pub(crate) trait Probe {
    /// Makes one observation.
    async fn observe(&mut self) -> Outcome;
}

/// One run of one gate: its clock, its observations so far, and where progress goes.
pub(crate) struct Run<'a> {
    spec: &'a GateSpec,
    progress: &'a dyn ProgressSink,
    started_at: DateTime<Utc>,
    applied_at: DateTime<Utc>,
    deadline: Instant,
    attempt: u32,
    /// The detail of the last observation that was not an error.
    last_valid: Option<String>,
    /// The last error, and whether it came after `last_valid`.
    last_error: Option<(String, bool)>,
}

impl<'a> Run<'a> {
    /// Starts the clock of `spec`'s gate.
    pub(crate) fn start(
        spec: &'a GateSpec,
        ctx: &GateContext,
        progress: &'a dyn ProgressSink,
    ) -> Run<'a> {
        Run {
            spec,
            progress,
            started_at: Utc::now(),
            applied_at: ctx.applied_at,
            deadline: Instant::now() + spec.timeout,
            attempt: 0,
            last_valid: None,
            last_error: None,
        }
    }

    /// When the gate's timeout ends.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The gate's timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.spec.timeout
    }

    /// Observes with `probe` at the gate's interval until it passes, fails or times out.
    ///
    /// The first observation always finishes (within [`FIRST_OBSERVATION_WAIT`]), even past
    /// the timeout, so that a gate that times out says what it saw rather than that the
    /// machine was slow to start looking. A later observation that the timeout interrupts
    /// is not one: the gate ends with what it saw before.
    pub(crate) async fn poll<P: Probe>(mut self, probe: &mut P) -> GateResult {
        self.wait_for_applied_at().await;
        loop {
            let first = self.attempt == 0;
            if !first && Instant::now() >= self.deadline {
                return self.timed_out();
            }
            let until = if first {
                self.deadline.max(Instant::now() + FIRST_OBSERVATION_WAIT)
            } else {
                self.deadline
            };
            let outcome = match tokio::time::timeout_at(until, probe.observe()).await {
                Ok(outcome) => outcome,
                Err(_) if first => Outcome::Error(GateError::NoAnswer),
                Err(_) => return self.timed_out(),
            };
            match outcome {
                Outcome::Pass(detail) => {
                    return self.end(ObservationState::Passing, GateStatus::Passed, detail);
                }
                Outcome::Fail(detail) => {
                    return self.end(ObservationState::Failing, GateStatus::Failed, detail);
                }
                Outcome::Abort(err) => {
                    return self.end(ObservationState::Error, GateStatus::Errored, err.reason());
                }
                Outcome::Pending(detail) => self.report(ObservationState::Pending, detail),
                Outcome::Holding(detail) => self.report(ObservationState::Passing, detail),
                Outcome::Failing(detail) => self.report(ObservationState::Failing, detail),
                Outcome::Error(err) => self.report(ObservationState::Error, err.reason()),
            }
            let next = (Instant::now() + self.spec.interval).min(self.deadline);
            tokio::time::sleep_until(next).await;
        }
    }

    /// Observations made before the commit was applied never count: wait until then.
    async fn wait_for_applied_at(&self) {
        while let Ok(wait) = (self.applied_at - Utc::now()).to_std() {
            if wait.is_zero() || Instant::now() >= self.deadline {
                return;
            }
            tokio::time::sleep_until((Instant::now() + wait).min(self.deadline)).await;
        }
    }

    /// Reports one observation.
    pub(crate) fn report(&mut self, state: ObservationState, detail: String) {
        self.attempt += 1;
        let observation = Observation {
            attempt: self.attempt,
            state,
            detail,
        };
        self.progress.observed(&self.spec.name, &observation);
        match state {
            ObservationState::Error => self.last_error = Some((observation.detail, true)),
            _ => {
                self.last_valid = Some(observation.detail);
                if let Some((_, after)) = &mut self.last_error {
                    *after = false;
                }
            }
        }
    }

    /// Reports a last observation and ends the gate with `status`.
    pub(crate) fn end(
        mut self,
        state: ObservationState,
        status: GateStatus,
        detail: String,
    ) -> GateResult {
        self.report(state, detail.clone());
        self.finish(status, detail)
    }

    /// Ends the gate without another observation.
    pub(crate) fn finish(self, status: GateStatus, reason: String) -> GateResult {
        GateResult {
            name: self.spec.name.clone(),
            kind: kind_name(&self.spec.kind).to_string(),
            status,
            reason,
            observations: self.attempt,
            started_at: self.started_at,
            finished_at: Utc::now(),
        }
    }

    /// The result when the timeout ended the gate: failed with the last thing it saw, or
    /// errored when it never saw anything valid.
    pub(crate) fn timed_out(self) -> GateResult {
        let after = format!("timed out after {}", human(self.spec.timeout));
        match (&self.last_valid, &self.last_error) {
            (Some(valid), Some((error, true))) => {
                let reason = format!("{after}: {valid} (then: {error})");
                self.finish(GateStatus::Failed, reason)
            }
            (Some(valid), _) => {
                let reason = format!("{after}: {valid}");
                self.finish(GateStatus::Failed, reason)
            }
            (None, Some((error, _))) => {
                let reason = format!("{after} without a valid observation: {error}");
                self.finish(GateStatus::Errored, reason)
            }
            (None, None) => {
                let reason = format!("{after} before the first observation");
                self.finish(GateStatus::Errored, reason)
            }
        }
    }
}

/// `250ms`, `30s`, `2m`, `1h30m`.
pub(crate) fn human(duration: Duration) -> String {
    if !duration.is_zero() && duration < Duration::from_secs(1) {
        return format!("{}ms", duration.as_millis());
    }
    crate::pipeline::Span(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::pipeline::GateKind;

    #[derive(Default)]
    struct Seen(Mutex<Vec<Observation>>);

    impl ProgressSink for Seen {
        fn observed(&self, _gate: &str, observation: &Observation) {
            self.0
                .lock()
                .expect("not poisoned")
                .push(observation.clone());
        }
        fn finished(&self, _result: &GateResult) {}
    }

    /// Replays a script of outcomes, then stays pending.
    struct Script(Vec<Outcome>);

    impl Probe for Script {
        async fn observe(&mut self) -> Outcome {
            if self.0.is_empty() {
                Outcome::Pending("still waiting".into())
            } else {
                self.0.remove(0)
            }
        }
    }

    fn spec(timeout_ms: u64) -> GateSpec {
        let timeout = Duration::from_millis(timeout_ms);
        GateSpec {
            name: "g".into(),
            timeout,
            interval: Duration::from_millis(10),
            kind: GateKind::Command {
                run: vec!["true".into()],
            },
        }
    }

    fn ctx() -> GateContext {
        GateContext {
            stage: "dev".into(),
            revision: "r-1".into(),
            commit: "c".into(),
            repo_root: ".".into(),
            manifests_dir: ".".into(),
            resources: Vec::new(),
            cluster: None,
            kubeconfig: None,
            env: Default::default(),
            applied_at: Utc::now(),
        }
    }

    async fn run(timeout_ms: u64, script: Vec<Outcome>) -> (GateResult, Vec<Observation>) {
        let seen = Seen::default();
        let spec = spec(timeout_ms);
        let result = Run::start(&spec, &ctx(), &seen)
            .poll(&mut Script(script))
            .await;
        (result, seen.0.into_inner().expect("not poisoned"))
    }

    #[tokio::test]
    async fn passes_after_errors_and_pending_observations() {
        let script = vec![
            Outcome::Error(GateError::NoAnswer),
            Outcome::Pending("syncing".into()),
            Outcome::Pass("healthy".into()),
        ];
        let (result, seen) = run(5_000, script).await;
        assert_eq!(
            (result.status, result.reason.as_str(), result.observations),
            (GateStatus::Passed, "healthy", 3)
        );
        let states: Vec<_> = seen.iter().map(|o| (o.attempt, o.state)).collect();
        assert_eq!(
            states,
            vec![
                (1, ObservationState::Error),
                (2, ObservationState::Pending),
                (3, ObservationState::Passing)
            ]
        );
    }

    #[tokio::test]
    async fn a_definitive_failure_ends_at_once() {
        let (result, _) = run(5_000, vec![Outcome::Fail("Degraded".into())]).await;
        assert_eq!(
            (result.status, result.reason.as_str(), result.observations),
            (GateStatus::Failed, "Degraded", 1)
        );
    }

    #[tokio::test]
    async fn only_errors_until_the_timeout_is_errored_with_the_last_error() {
        let errors = (0..1_000)
            .map(|_| {
                Outcome::Error(GateError::ServerError {
                    url: "http://x".into(),
                    status: 503,
                })
            })
            .collect();
        let (result, _) = run(100, errors).await;
        assert_eq!(result.status, GateStatus::Errored);
        assert_eq!(
            result.reason,
            "timed out after 100ms without a valid observation: http://x answered 503"
        );
    }

    #[tokio::test]
    async fn pending_until_the_timeout_fails_with_the_last_observation() {
        let (result, _) = run(100, vec![Outcome::Error(GateError::NoAnswer)]).await;
        assert_eq!(
            (result.status, result.reason.as_str()),
            (GateStatus::Failed, "timed out after 100ms: still waiting")
        );
    }

    /// Passes at once, noting when it observed.
    struct Clocked(Vec<DateTime<Utc>>);

    impl Probe for Clocked {
        async fn observe(&mut self) -> Outcome {
            self.0.push(Utc::now());
            Outcome::Pass("ok".into())
        }
    }

    #[tokio::test]
    async fn nothing_is_observed_before_the_commit_was_applied() {
        let mut ctx = ctx();
        ctx.applied_at = Utc::now() + chrono::Duration::milliseconds(150);
        let spec = spec(5_000);
        let mut probe = Clocked(Vec::new());
        let result = Run::start(&spec, &ctx, &Seen::default())
            .poll(&mut probe)
            .await;
        assert_eq!(result.status, GateStatus::Passed);
        assert!(
            probe.0[0] >= ctx.applied_at,
            "observed at {}, applied at {}",
            probe.0[0],
            ctx.applied_at
        );
    }

    #[test]
    fn durations_read_like_policy_files() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }
}
