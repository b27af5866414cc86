//! What the gate tests share: a context for one promotion, gate specs with short intervals,
//! a progress recorder, fixtures, and the local servers.

pub mod replay;
pub mod server;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use ferry::gates::{GateContext, GateResult, Observation, ObservationState, ProgressSink};
use ferry::pipeline::{GateKind, GateSpec};

/// The output commit of the promotion under test (the fixtures name it).
pub const COMMIT: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

/// A context for promoting revision `r-0123456789ab` to stage `prod` as [`COMMIT`], applied now.
pub fn context() -> GateContext {
    GateContext {
        stage: "prod".into(),
        revision: "r-0123456789ab".into(),
        commit: COMMIT.into(),
        repo_root: std::env::temp_dir(),
        manifests_dir: std::env::temp_dir(),
        resources: Vec::new(),
        cluster: None,
        kubeconfig: None,
        env: BTreeMap::new(),
        applied_at: Utc::now(),
    }
}

/// A gate polled every 50ms, with a timeout that passing gates never reach, even on a loaded
/// machine.
pub fn gate(name: &str, kind: GateKind) -> GateSpec {
    GateSpec {
        name: name.into(),
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(50),
        kind,
    }
}

/// `spec` with a timeout of `ms` milliseconds (for gates expected to time out). However slow
/// the machine, the gate's first observation finishes before it times out.
pub fn timing_out_after(ms: u64, spec: GateSpec) -> GateSpec {
    GateSpec {
        timeout: Duration::from_millis(ms),
        ..spec
    }
}

/// A JSON fixture from `tests/fixtures/kube`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/kube/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Records what gates report.
#[derive(Default)]
pub struct Recorder {
    observations: Mutex<Vec<(String, Observation)>>,
    finished: Mutex<Vec<GateResult>>,
}

impl Recorder {
    /// The states `gate` went through, consecutive repeats collapsed.
    pub fn states(&self, gate: &str) -> Vec<ObservationState> {
        let mut states: Vec<ObservationState> = Vec::new();
        for (name, observation) in self.observations.lock().expect("not poisoned").iter() {
            if name == gate && states.last() != Some(&observation.state) {
                states.push(observation.state);
            }
        }
        states
    }

    /// The details `gate` reported, in order.
    pub fn details(&self, gate: &str) -> Vec<String> {
        let observations = self.observations.lock().expect("not poisoned");
        observations
            .iter()
            .filter(|(name, _)| name == gate)
            .map(|(_, o)| o.detail.clone())
            .collect()
    }

    /// The names of the gates reported finished, in order.
    pub fn finished(&self) -> Vec<String> {
        self.finished
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
}

impl ProgressSink for Recorder {
    fn observed(&self, gate: &str, observation: &Observation) {
        self.observations
            .lock()
            .expect("not poisoned")
            .push((gate.to_string(), observation.clone()));
    }

    fn finished(&self, result: &GateResult) {
        self.finished
            .lock()
            .expect("not poisoned")
            .push(result.clone());
    }
}
