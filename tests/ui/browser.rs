//! A real headless Chromium driven over WebDriver: chromedriver started on a free 127.0.0.1
//! port, a fresh profile per browser, and blocking helpers that wait for conditions.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::support::server::PATIENCE;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session; chromedriver is killed when it is dropped.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Where screenshots go.
    pub shots: PathBuf,
    base: String,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that browses `base`; screenshots go to
    /// `shots`.
    pub fn start(base: &str, shots: &Path) -> Browser {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .args([
                format!("--port={port}"),
                "--allowed-ips=127.0.0.1".to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {CHROMEDRIVER} (apt-get install chromium-driver): {e}")
            });
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Browser {
            runtime,
            client: None,
            driver,
            _profile: profile,
            shots: shots.to_path_buf(),
            base: base.trim_end_matches('/').to_string(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let caps = capabilities(browser._profile.path());
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            let attempt = browser.runtime.block_on(async {
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
            });
            match attempt {
                Ok(client) => break client,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => panic!("no WebDriver session from chromedriver: {err}"),
            }
        };
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Opens `path` of the service.
    pub fn open(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.runtime
            .block_on(self.client().goto(&url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The path of the current page.
    pub fn path(&self) -> String {
        let url = self
            .runtime
            .block_on(self.client().current_url())
            .expect("current url");
        url.path().to_string()
    }

    /// Whether an element matches `css` now.
    pub fn has(&self, css: &str) -> bool {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| !found.is_empty())
            .expect("find elements")
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> usize {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| found.len())
            .expect("find elements")
    }

    /// The text of the element matching `css`, waiting for it to appear.
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        self.wait_until(&format!("an element {css}"), || self.has(css));
        self.runtime
            .block_on(async {
                let element = self.client().find(Locator::Css(css)).await?;
                element.text().await
            })
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// Types `text` into the field matching `css`.
    #[track_caller]
    pub fn fill(&self, css: &str, text: &str) {
        self.wait_until(&format!("a field {css}"), || self.has(css));
        self.runtime
            .block_on(async {
                let element = self.client().find(Locator::Css(css)).await?;
                element.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the element matching `css`.
    #[track_caller]
    pub fn click(&self, css: &str) {
        self.wait_until(&format!("an element {css}"), || self.has(css));
        self.runtime
            .block_on(async {
                let element = self.client().find(Locator::Css(css)).await?;
                element.click().await
            })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Runs `script` in the page and answers its value.
    pub fn script(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("run script: {e}"))
    }

    /// The value of the browser's cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.runtime
            .block_on(self.client().get_all_cookies())
            .expect("cookies")
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Waits until `ready` holds, checking every 100 ms for [`PATIENCE`].
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let source = self
            .runtime
            .block_on(self.client().source())
            .unwrap_or_default();
        panic!("timed out waiting for {what}; the page is:\n{source}");
    }

    /// Waits until the text of `css` contains `wanted`.
    #[track_caller]
    pub fn wait_text(&self, css: &str, wanted: &str) {
        self.wait_until(&format!("{css} to say {wanted:?}"), || {
            self.has(css)
                && self
                    .runtime
                    .block_on(async {
                        let element = self.client().find(Locator::Css(css)).await?;
                        element.text().await
                    })
                    .is_ok_and(|t| t.contains(wanted))
        });
    }

    /// Saves a PNG of the viewport as `name.png` in the screenshot directory; its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("screenshot");
        std::fs::create_dir_all(&self.shots).expect("screenshot dir");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

fn capabilities(profile: &Path) -> serde_json::Map<String, Value> {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    caps.as_object().expect("an object").clone()
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
