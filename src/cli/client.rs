//! The CLI as a client of `ferry serve`: `--server URL` (or `FERRY_SERVER`) with the token from
//! `FERRY_TOKEN` or `ferry login`, one HTTP call per command, and the API's errors mapped to
//! the same exit codes as local errors.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::credentials;
use super::{CliError, Context, ErrorKind};

/// What to do about a promotion a server found blocked.
pub const BLOCKED_HINT: &str =
    "`ferry status` shows what each stage waits for; the server proceeds by itself once it may";

/// How long one API call may take (not a followed event stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A server's answer that was not an error.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The body as `T`.
    pub fn parse<T: DeserializeOwned>(self, server: &str) -> Result<T, CliError> {
        serde_json::from_value(self.body).map_err(|err| {
            CliError::failed(format!("{server} answered with an unexpected body: {err}"))
        })
    }
}

/// A connection to one server, with the caller's token.
pub struct Client {
    server: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of `server` (an http:// or https:// URL) presenting `token`.
    pub fn new(server: &str, token: String) -> Result<Client, CliError> {
        let server = normalize_server(server)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::failed(format!("failed to set up HTTP: {err}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| CliError::failed(format!("failed to start the runtime: {err}")))?;
        Ok(Client {
            server,
            token,
            http,
            runtime,
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `GET path` (with `query`), the body parsed as `T`.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        self.call(Method::GET, path, query, None::<&()>)?
            .parse(&self.server)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &impl Serialize) -> Result<Reply, CliError> {
        Ok(self.call(Method::POST, path, &[], Some(body))?)
    }

    /// `POST path` with a JSON body; a refusal is handed back with the promotion it names
    /// (a blocked or failed promotion), so that the caller can show that promotion.
    pub fn post_promotion(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Result<Reply, Refusal>, CliError> {
        match self.call(Method::POST, path, &[], Some(body)) {
            Ok(reply) => Ok(Ok(reply)),
            Err(mut err) => match err.promotion.take() {
                Some(promotion) => Ok(Err(Refusal {
                    error: err.error,
                    promotion,
                })),
                None => Err(err.error),
            },
        }
    }

    /// Opens the server's event stream (`GET /api/v1/events`) and waits until it is open, so
    /// that every change from now on is in it.
    pub fn events(&self) -> Result<EventStream<'_>, CliError> {
        let url = format!("{}/api/v1/events", self.server);
        let request = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let response = self
            .runtime
            .block_on(request.send())
            .map_err(|err| unreachable_server(&self.server, &err))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = self.runtime.block_on(response.bytes()).unwrap_or_default();
            return Err(api_error(&self.server, status.as_u16(), &bytes).error);
        }
        let mut stream = EventStream {
            client: self,
            response,
            buffer: String::new(),
        };
        match stream.next()? {
            Some(event) if event.name == "ready" => Ok(stream),
            _ => Err(CliError::failed(format!(
                "{} did not open its event stream",
                self.server
            ))),
        }
    }

    fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<Reply, ApiFailure> {
        let url = format!("{}{path}", self.server);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT)
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = self
            .runtime
            .block_on(async {
                let response = request.send().await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, bytes))
            })
            .map_err(|err| ApiFailure::from(unreachable_server(&self.server, &err)))?;
        if !status.is_success() {
            return Err(api_error(&self.server, status.as_u16(), &bytes));
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|err| {
                ApiFailure::from(CliError::failed(format!(
                    "{method} {url} answered {status} with a body that is not JSON: {err}"
                )))
            })?
        };
        Ok(Reply { status, body })
    }
}

/// A failed call: the error to show, and the promotion the server's error names, if any.
pub struct ApiFailure {
    pub error: CliError,
    pub promotion: Option<String>,
}

impl From<CliError> for ApiFailure {
    fn from(error: CliError) -> ApiFailure {
        ApiFailure {
            error,
            promotion: None,
        }
    }
}

impl From<ApiFailure> for CliError {
    fn from(failure: ApiFailure) -> CliError {
        failure.error
    }
}

/// A write the server refused because of a promotion it names (blocked, failed).
pub struct Refusal {
    pub error: CliError,
    /// The promotion's id.
    pub promotion: String,
}

/// One server-sent event: its name and its JSON data.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// The server's event stream, read as it arrives.
pub struct EventStream<'a> {
    client: &'a Client,
    response: reqwest::Response,
    buffer: String,
}

impl EventStream<'_> {
    /// The next event; `None` when the server ended the stream.
    pub fn next(&mut self) -> Result<Option<Event>, CliError> {
        Ok(self.next_within(None)?.flatten())
    }

    /// The next event, waiting at most `limit` for it (`Ok(None)` when none came in time);
    /// `Some(None)` when the server ended the stream.
    pub fn next_within(
        &mut self,
        limit: Option<Duration>,
    ) -> Result<Option<Option<Event>>, CliError> {
        let deadline = limit.map(|limit| tokio::time::Instant::now() + limit);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Ok(Some(Some(event)));
                }
                continue;
            }
            let chunk = self.client.runtime.block_on(async {
                match deadline {
                    Some(at) => tokio::time::timeout_at(at, self.response.chunk())
                        .await
                        .ok(),
                    None => Some(self.response.chunk().await),
                }
            });
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            match chunk.map_err(|err| unreachable_server(&self.client.server, &err))? {
                Some(bytes) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return Ok(Some(None)),
            }
        }
    }
}

/// One event block of a `text/event-stream` (`event:` and `data:` lines); `None` for a
/// comment or keep-alive.
fn parse_event(block: &str) -> Option<Event> {
    let mut name = String::new();
    let mut data = String::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_string();
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if name.is_empty() && data.is_empty() {
        return None;
    }
    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
    Some(Event {
        name: if name.is_empty() {
            "message".to_string()
        } else {
            name
        },
        data,
    })
}

impl Context {
    /// The client of the server named by `--server` / `FERRY_SERVER`, or `None` to work on the
    /// local state. `--as` is refused with a server: the server takes the identity from the
    /// token.
    pub fn client(&self) -> Result<Option<Client>, CliError> {
        let Some(server) = self.server() else {
            return Ok(None);
        };
        let server = normalize_server(server)?;
        let token = match std::env::var("FERRY_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            Some(token) => token.trim().to_string(),
            None => credentials::token_for(&server)?.ok_or_else(|| {
                CliError::bad_input(format!("no token for {server}")).with_hint(format!(
                    "`ferry login {server}` keeps one, or set FERRY_TOKEN"
                ))
            })?,
        };
        Client::new(&server, token).map(Some)
    }

    /// Refuses `--server` for a command that has no remote form.
    pub fn local_only(&self, command: &str, why: &str) -> Result<(), CliError> {
        match self.server() {
            Some(server) => Err(CliError::bad_input(format!(
                "`ferry {command}` does not run against a server ({server}): {why}"
            ))
            .with_hint("leave out --server (and unset FERRY_SERVER) to run it here")),
            None => Ok(()),
        }
    }

    /// `--server`, else `FERRY_SERVER`, when not empty.
    fn server(&self) -> Option<&str> {
        self.global
            .server
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// `text` as one path segment of a URL: everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `URL` without a trailing `/`; only http:// and https:// URLs.
pub fn normalize_server(url: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(url.to_string()),
        _ => Err(CliError::bad_input(format!(
            "`{url}` is not a server URL: expected http(s)://HOST[:PORT]"
        ))),
    }
}

fn unreachable_server(server: &str, err: &reqwest::Error) -> CliError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    CliError::failed(format!("failed to reach {server}: {text}"))
        .with_hint("is `ferry serve` running there? check --server / FERRY_SERVER")
}

/// The CLI error for an API error: the kind (exit code) from the error's code (or, without
/// one, the status), the server's message as the message; with the promotion the error names.
pub fn api_error(server: &str, status: u16, body: &[u8]) -> ApiFailure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("{server} answered {status}")
            } else {
                format!(
                    "{server} answered {status}: {}",
                    text.chars().take(200).collect::<String>()
                )
            }
        });
    let kind = match (code, status) {
        ("blocked" | "busy" | "conflict", _) | (_, 409) => ErrorKind::Blocked,
        ("unauthenticated" | "forbidden" | "not_found" | "bad_request", _) => ErrorKind::BadInput,
        (_, 400..=499) => ErrorKind::BadInput,
        _ => ErrorKind::Failed,
    };
    let hint = match (code, status) {
        ("unauthenticated", _) | (_, 401) => Some(format!(
            "the server refused the token: `ferry login {server}` keeps a new one, or set FERRY_TOKEN"
        )),
        ("blocked", _) => Some(BLOCKED_HINT.to_string()),
        ("busy", _) => Some("wait for it to finish, or check `ferry status`".to_string()),
        _ => None,
    };
    let promotion = error
        .and_then(|e| e.get("promotion"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let err = CliError::new(kind, message);
    let error = match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    };
    ApiFailure { error, promotion }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: u16, body: &str) -> (u8, String) {
        let err = api_error("http://127.0.0.1:7878", status, body.as_bytes()).error;
        (err.kind().exit_code(), err.to_string())
    }

    #[test]
    fn api_errors_map_to_the_local_exit_codes() {
        let body = |code: &str, message: &str| {
            serde_json::json!({"error": {"code": code, "message": message}}).to_string()
        };
        let table = [
            (401, body("unauthenticated", "token t-1 was revoked"), 2),
            (403, body("forbidden", "erin may not promote prod"), 2),
            (404, body("not_found", "unknown revision r-1"), 2),
            (400, body("bad_request", "images: expected a map"), 2),
            (409, body("blocked", "needs 1 more approval"), 3),
            (409, body("busy", "stage dev is busy"), 3),
            (409, body("conflict", "moved"), 3),
            (413, String::new(), 2),
            (500, body("internal", "disk full"), 1),
            (502, "<html>bad gateway</html>".to_string(), 1),
        ];
        for (status, body, code) in table {
            assert_eq!(exit(status, &body).0, code, "{status} {body}");
        }
    }

    #[test]
    fn the_message_is_the_servers_and_hints_say_what_to_do() {
        let (_, text) = exit(
            403,
            r#"{"error": {"code": "forbidden", "message": "erin may not promote prod: promoter of prod is group:release-managers"}}"#,
        );
        assert_eq!(
            text,
            "error: erin may not promote prod: promoter of prod is group:release-managers"
        );
        let (_, text) = exit(
            401,
            r#"{"error": {"code": "unauthenticated", "message": "the token is not valid"}}"#,
        );
        assert!(
            text.contains(
                "hint: the server refused the token: `ferry login http://127.0.0.1:7878`"
            ),
            "{text}"
        );
        let (_, text) = exit(502, "bad gateway");
        assert_eq!(
            text,
            "error: http://127.0.0.1:7878 answered 502: bad gateway"
        );
    }

    #[test]
    fn event_blocks_are_parsed_and_keep_alives_skipped() {
        let event =
            parse_event("event: gate.finished\ndata: {\"stage\":\"dev\"}\n\n").expect("an event");
        assert_eq!(event.name, "gate.finished");
        assert_eq!(event.data["stage"], "dev");
        assert!(parse_event(":\n\n").is_none());
        let plain = parse_event("data: hello\n").expect("an event");
        assert_eq!(plain.name, "message");
        assert_eq!(plain.data, Value::String("hello".into()));
    }

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            normalize_server("http://127.0.0.1:7878/").expect("valid"),
            "http://127.0.0.1:7878"
        );
        assert!(normalize_server("127.0.0.1:7878").is_err());
        assert!(normalize_server("https://").is_err());
    }
}
