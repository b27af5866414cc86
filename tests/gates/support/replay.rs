//! A Kubernetes API replay server: it answers each path with recorded API server responses in
//! sequence (the last one repeats), and a kubeconfig pointing at it.
//!
//! Paths it does not know get what a real API server sends for a resource it does not serve:
//! a plain-text `404 page not found`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::fixture;
use super::server::{Request, Response, TestServer};

/// The responses for one method and path.
pub struct Route {
    method: &'static str,
    path: String,
    responses: Vec<Response>,
    next: AtomicUsize,
}

/// `GET path` answered with these fixtures in turn.
pub fn get(path: &str, fixtures: &[&str]) -> Route {
    route("GET", path, fixtures)
}

/// `PATCH path` answered with these fixtures in turn.
pub fn patch(path: &str, fixtures: &[&str]) -> Route {
    route("PATCH", path, fixtures)
}

/// `GET path` always answered with `response` (for answers no API server gives).
pub fn get_raw(path: &str, response: Response) -> Route {
    Route {
        method: "GET",
        path: path.to_string(),
        responses: vec![response],
        next: AtomicUsize::new(0),
    }
}

fn route(method: &'static str, path: &str, fixtures: &[&str]) -> Route {
    let responses = fixtures
        .iter()
        .map(|name| response(&fixture(name)))
        .collect();
    Route {
        method,
        path: path.to_string(),
        responses,
        next: AtomicUsize::new(0),
    }
}

/// A fixture as the API server sends it: a `Status` with its code, anything else with 200.
fn response(body: &str) -> Response {
    let value: serde_json::Value = serde_json::from_str(body).expect("fixtures are JSON");
    let status = match value["kind"].as_str() {
        Some("Status") => value["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500),
        _ => 200,
    };
    Response::json(status, body)
}

/// A running replay server and a kubeconfig for it (default namespace `shop`).
pub struct Replay {
    server: TestServer,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Replay {
    pub async fn start(routes: Vec<Route>) -> Replay {
        let server = TestServer::start(move |request: &Request| answer(&routes, request)).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_for(&server.url(""))).expect("write kubeconfig");
        Replay {
            server,
            _dir: dir,
            kubeconfig,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig.clone()
    }

    /// `METHOD path?query` of every request received.
    pub fn requests(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| {
                if r.query.is_empty() {
                    format!("{} {}", r.method, r.path)
                } else {
                    format!("{} {}?{}", r.method, r.path, r.query)
                }
            })
            .collect()
    }

    /// The bodies of the requests to `path` with `method`.
    pub fn bodies(&self, method: &str, path: &str) -> Vec<serde_json::Value> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| serde_json::from_slice(&r.body).expect("request bodies are JSON"))
            .collect()
    }
}

fn answer(routes: &[Route], request: &Request) -> Response {
    let Some(route) = routes
        .iter()
        .find(|r| r.method == request.method && r.path == request.path)
    else {
        return Response::text(404, "404 page not found\n");
    };
    let index = route
        .next
        .fetch_add(1, Ordering::SeqCst)
        .min(route.responses.len() - 1);
    route.responses[index].clone()
}

/// A kubeconfig for the server at `url`, with a token user and namespace `shop`.
pub fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: replay
  cluster:
    server: {url}
contexts:
- name: replay
  context:
    cluster: replay
    user: tester
    namespace: shop
- name: other
  context:
    cluster: replay
    user: tester
    namespace: elsewhere
current-context: replay
users:
- name: tester
  user:
    token: replay-token
"
    )
}
