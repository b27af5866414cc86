//! The web UI in a real headless Chromium (Debian `chromium` + `chromium-driver`), driven
//! over WebDriver against a real `ferry serve` on 127.0.0.1.
//!
//! Screenshots go to each test's temporary directory; with `FERRY_UI_SHOTS=DIR` they are
//! also copied to DIR (how `docs/ui/` is made).

mod browser;
mod stories;

use std::path::Path;

use serde_json::{Value, json};

use crate::support::TestRepo;
use crate::support::server::{Api, Served, wait_for};
use browser::Browser;

/// Who may do what in the UI stories.
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

/// The example repository without soak and windows, so prod waits only for its two
/// approvals from release managers (alice, bob, carol; the requester may not approve).
fn ui_repo() -> TestRepo {
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
    repo.write("policies/access.yaml", ACCESS);
    repo.commit("UI test policies");
    repo
}

fn token(repo: &TestRepo, user: &str) -> String {
    let run = repo
        .ferry(&["token", "create", "--user", user, "-o", "json"])
        .expect_code(0);
    run.json()["token"].as_str().expect("a token").to_string()
}

/// A running service with tokens for the cast, a revision verified in qa and waiting for
/// approvals in prod, and a browser.
struct Ui {
    _repo: TestRepo,
    served: Served,
    api: Api,
    alice: String,
    bob: String,
    carol: String,
    victor: String,
    revision: String,
    browser: Browser,
    shots: tempfile::TempDir,
}

impl Ui {
    fn start() -> Ui {
        let repo = ui_repo();
        let ci = token(&repo, "ci-bot");
        let alice = token(&repo, "alice");
        let bob = token(&repo, "bob");
        let carol = token(&repo, "carol");
        let victor = token(&repo, "victor");
        let served = Served::start(&repo, &[], &[]);
        let api = served.api();
        let revision = api
            .post(
                "/api/v1/releases",
                Some(&ci),
                &json!({"images": {"acme/helloworld": "1.4.2"}, "message": "first release"}),
            )
            .expect(201)
            .body["id"]
            .as_str()
            .expect("id")
            .to_string();
        wait_for(&format!("{revision} verified in qa"), || {
            let s = stage(&api, &victor, "qa");
            s["revision"] == revision.as_str() && s["verified"] == true
        });
        api.post(
            "/api/v1/promotions",
            Some(&alice),
            &json!({"revision": revision, "stage": "prod"}),
        )
        .expect_error(409, "blocked");
        let shots = tempfile::tempdir().expect("screenshot dir");
        let browser = Browser::start(&served.url, shots.path());
        Ui {
            _repo: repo,
            served,
            api,
            alice,
            bob,
            carol,
            victor,
            revision,
            browser,
            shots,
        }
    }

    /// Signs in on the login form with `token`.
    fn sign_in(&self, token: &str) {
        self.browser.open("/");
        self.browser
            .wait_until("the login form", || self.browser.path() == "/login");
        self.browser.fill("#token", token);
        self.browser.click("#signin");
        self.browser
            .wait_until("the pipeline page", || self.browser.path() == "/");
    }

    /// Saves a screenshot named `name`, also into `FERRY_UI_SHOTS` when set.
    fn shot(&self, name: &str) {
        let path = self.browser.screenshot(name);
        assert!(path.starts_with(self.shots.path()));
        if let Ok(dir) = std::env::var("FERRY_UI_SHOTS") {
            std::fs::create_dir_all(&dir).expect("create FERRY_UI_SHOTS");
            std::fs::copy(&path, Path::new(&dir).join(format!("{name}.png"))).expect("copy shot");
        }
    }
}

fn stage(api: &Api, token: &str, name: &str) -> Value {
    let status = api.get("/api/v1/status", Some(token)).expect(200);
    status.body["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .expect("the stage is in the status")
}

/// A plain HTTP client that sends a browser's session cookie and follows no redirect.
struct Forger {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Forger {
    fn new(base: &str, session: &str) -> Forger {
        Forger {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.trim_end_matches('/').to_string(),
            cookie: format!("ferry_session={session}"),
        }
    }

    /// `POST path` with form `fields`; the status and body.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.send(request)
    }

    /// `GET path`; the status and body.
    fn get(&self, path: &str) -> (u16, String) {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie);
        self.send(request)
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        self.runtime.block_on(async {
            let response = request.send().await.expect("send");
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            let text = response.text().await.expect("body");
            (status, location.unwrap_or(text))
        })
    }
}
