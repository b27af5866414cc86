//! `ferry serve` end to end: a real server on a free 127.0.0.1 port, spoken to over HTTP.

mod api;
mod client;
mod lifecycle;
mod metrics;
mod notifications;
mod reports;
mod security;
mod story;

use serde_json::{Value, json};

use crate::support::TestRepo;
use crate::support::server::{Api, Served, wait_for};

/// Who may do what in the service tests.
const ACCESS: &str = "apiVersion: ferry/v1
kind: Access
metadata: {name: access}
spec:
  roles:
  - {role: viewer, subjects: [\"*\"]}
  - {role: releaser, subjects: [ci-bot]}
  - {role: promoter, subjects: [group:release-managers]}
  - {role: admin, subjects: [alice]}
";

/// The example repository, made to run without waiting for time to pass: no soak, no
/// windows, and the access rules above.
fn service_repo() -> TestRepo {
    let repo = timeless_example();
    repo.write("policies/access.yaml", ACCESS);
    repo.commit("Service test access rules");
    repo
}

/// The bundled example as it is, its own `policies/access.yaml` included, but with no soak
/// and no windows: a test cannot wait 30 minutes or for Monday morning.
fn timeless_example() -> TestRepo {
    let repo = TestRepo::example();
    repo.edit("policies/qa.yaml", "  soak: 10m\n", "");
    let prod = repo.read("policies/prod.yaml");
    let start = prod.find("  soak: 30m").expect("soak");
    let end = prod.find("  approvals:").expect("approvals");
    let prod = format!("{}{}", &prod[..start], &prod[end..]);
    let start = prod.find("  windows:").expect("windows");
    let end = prod.find("  # Who may promote").expect("overrideBy");
    let prod = format!("{}{}", &prod[..start], &prod[end..]);
    repo.write("policies/prod.yaml", &prod);
    repo.commit("No soak and no windows");
    repo
}

/// Creates a token for `user` on the repository's state and returns it.
fn token(repo: &TestRepo, user: &str) -> String {
    let run = repo
        .ferry(&["token", "create", "--user", user, "-o", "json"])
        .expect_code(0);
    run.json()["token"].as_str().expect("a token").to_string()
}

/// A running server on a repository, with tokens for the usual cast.
struct Service {
    repo: TestRepo,
    served: Served,
    api: Api,
    /// releaser
    ci: String,
    /// admin and release manager
    alice: String,
    /// release managers
    bob: String,
    carol: String,
    /// only a viewer
    victor: String,
}

impl Service {
    fn start() -> Service {
        Service::start_with(service_repo(), &[], &[])
    }

    fn start_with(repo: TestRepo, args: &[&str], env: &[(&str, &str)]) -> Service {
        let ci = token(&repo, "ci-bot");
        let alice = token(&repo, "alice");
        let bob = token(&repo, "bob");
        let carol = token(&repo, "carol");
        let victor = token(&repo, "victor");
        let served = Served::start(&repo, args, env);
        let api = served.api();
        Service {
            repo,
            served,
            api,
            ci,
            alice,
            bob,
            carol,
            victor,
        }
    }

    /// Creates a release of acme/helloworld at `tag` as the releaser; its id.
    fn release(&self, tag: &str) -> String {
        let reply = self
            .api
            .post(
                "/api/v1/releases",
                Some(&self.ci),
                &json!({"images": {"acme/helloworld": tag}}),
            )
            .expect(201);
        reply.body["id"].as_str().expect("id").to_string()
    }

    /// The status entry of `stage`.
    fn stage(&self, stage: &str) -> Value {
        let status = self
            .api
            .get("/api/v1/status", Some(&self.victor))
            .expect(200);
        status.body["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .find(|s| s["name"] == stage)
            .cloned()
            .expect("the stage is in the status")
    }

    /// Waits until `stage` has `revision` verified.
    #[track_caller]
    fn wait_verified(&self, stage: &str, revision: &str) {
        wait_for(&format!("{revision} verified in {stage}"), || {
            let s = self.stage(stage);
            s["revision"] == revision && s["verified"] == true
        });
    }

    /// Waits until the newest promotion of `stage` is in `state`.
    #[track_caller]
    fn wait_state(&self, stage: &str, state: &str) -> Value {
        let mut last = Value::Null;
        wait_for(&format!("{stage} {state}"), || {
            last = self.stage(stage);
            last["state"] == state
        });
        last
    }
}
