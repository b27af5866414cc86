//! A real `ferry serve` on a free 127.0.0.1 port, and a small HTTP client for its API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestRepo;

/// How long a test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `ready` holds, failing with `what` after [`PATIENCE`].
#[track_caller]
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A running `ferry serve`, killed when dropped.
pub struct Served {
    child: Child,
    pub url: String,
    logs: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `ferry serve --listen 127.0.0.1:0 ARGS` in `repo` and waits until it listens.
    pub fn start(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Served {
        Served::start_on(repo, "127.0.0.1:0", args, env)
    }

    /// Starts `ferry serve --listen LISTEN ARGS` in `repo` and waits until it listens.
    pub fn start_on(repo: &TestRepo, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = repo.command(&["serve", "--listen", listen]);
        command.args(args).env("FERRY_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut logs = sink.lock().expect("logs");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let url = match rx.recv_timeout(PATIENCE) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("ferry serve did not start:\n{}", logs.lock().expect("logs"));
            }
        };
        Served { child, url, logs }
    }

    /// What the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").clone()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) and waits for the process to end.
    pub fn stop(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ferry serve did not stop on SIG{signal}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of this server's API.
    pub fn api(&self) -> Api {
        Api::new(&self.url, None)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer of the API.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error answer: its status and `error.code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Reply {
        let reply = self.expect(status);
        assert_eq!(reply.body["error"]["code"], code, "body: {}", reply.text);
        reply
    }

    /// The error message of an error answer.
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for a server that must keep its address
/// across a restart.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("local address").port()
}

/// A blocking HTTP client of the API.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of `base`, trusting the PEM certificate `ca` when given.
    pub fn new(base: &str, ca: Option<&str>) -> Api {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut builder = reqwest::Client::builder().timeout(PATIENCE);
        if let Some(pem) = ca {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("certificate");
            builder = builder.add_root_certificate(cert);
        }
        Api {
            runtime,
            client: builder.build().expect("client"),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// `GET path` with the bearer `token`, if any.
    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.client.get(self.url(path)), token)
    }

    /// `GET path` without a token; `None` when nothing answers (yet).
    pub fn try_get(&self, path: &str) -> Option<Reply> {
        let request = self.client.get(self.url(path));
        self.runtime.block_on(async {
            let response = request.send().await.ok()?;
            let status = response.status().as_u16();
            let text = response.text().await.ok()?;
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Some(Reply { status, body, text })
        })
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let request = self.client.post(self.url(path)).json(body);
        self.send(request, token)
    }

    /// `POST path` with raw bytes and headers.
    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request, None)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, mut request: reqwest::RequestBuilder, token: Option<&str>) -> Reply {
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.runtime.block_on(async {
            let response = request.send().await.expect("send request");
            let status = response.status().as_u16();
            let text = response.text().await.expect("read body");
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Reply { status, body, text }
        })
    }
}

/// The event stream of a server, read on a thread of its own.
pub struct Events {
    names: std::sync::mpsc::Receiver<(String, Value)>,
    pub seen: Vec<(String, Value)>,
}

impl Events {
    /// Opens `GET /api/v1/events` with `token` and waits until the stream is open.
    pub fn open(base: &str, token: &str) -> Events {
        let (tx, rx) = std::sync::mpsc::channel();
        let url = format!("{}/api/v1/events", base.trim_end_matches('/'));
        let token = token.to_string();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                let Ok(mut response) = client.get(url).bearer_auth(token).send().await else {
                    return;
                };
                let status = response.status().as_u16().to_string();
                if tx
                    .send(("status".to_string(), Value::String(status)))
                    .is_err()
                {
                    return;
                }
                let mut buffer = String::new();
                while let Ok(Some(chunk)) = response.chunk().await {
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some((event, rest)) = buffer.split_once("\n\n") {
                        let mut name = String::new();
                        let mut data = Value::Null;
                        for line in event.lines() {
                            if let Some(n) = line.strip_prefix("event: ") {
                                name = n.to_string();
                            } else if let Some(d) = line.strip_prefix("data: ") {
                                data = serde_json::from_str(d).unwrap_or(Value::Null);
                            }
                        }
                        if !name.is_empty() && tx.send((name, data)).is_err() {
                            return;
                        }
                        buffer = rest.to_string();
                    }
                }
            });
        });
        let mut events = Events {
            names: rx,
            seen: Vec::new(),
        };
        let (_, status) = events.next().expect("the event stream answers");
        assert_eq!(status, "200", "GET /api/v1/events");
        events.wait_for("ready");
        events
    }

    fn next(&mut self) -> Option<(String, Value)> {
        self.names.recv_timeout(PATIENCE).ok()
    }

    /// Waits for the next event named `name`, failing after [`PATIENCE`]; returns its data.
    #[track_caller]
    pub fn wait_for(&mut self, name: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match self.names.recv_timeout(Duration::from_millis(200)) {
                Ok((n, data)) => {
                    self.seen.push((n.clone(), data.clone()));
                    if n == name {
                        return data;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let seen: Vec<&str> = self.seen.iter().map(|(n, _)| n.as_str()).collect();
        panic!("no event {name}; saw {seen:?}");
    }
}

/// `ferry --server URL ARGS` presenting `token` (in `FERRY_TOKEN`), run outside any
/// repository: whatever it shows comes from the server.
pub fn remote_command(url: &str, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    super::isolate_git(&mut command)
        .arg("--server")
        .arg(url)
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("FERRY_TOKEN", token)
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("ferry-tests-no-config"),
        )
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_USER")
        .env_remove("FERRY_LOG");
    command
}

/// Runs [`remote_command`] and waits for it.
pub fn remote(url: &str, token: &str, args: &[&str]) -> super::Run {
    super::Run::from_command(&mut remote_command(url, token, args))
}
