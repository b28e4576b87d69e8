//! TensorBoard's HParams dashboard in a real browser: a tiny sweep's runs, TensorBoard
//! (the workspace's `.venv`) started on loopback by `scripts/tensorboard.sh`, and headless
//! Chromium driven through chromedriver's WebDriver protocol opening `#hparams`. The
//! dashboard's table must list every run by its folder with its activation, beside the
//! decay ratio. Needs Debian's `chromium` and `chromium-driver` (ignored without them, with
//! the reason; under CI their absence fails the build, see build.rs).

#![forbid(unsafe_code)]
#![cfg_attr(
    not(all(chromium, tensorboard_python)),
    allow(dead_code, unused_imports)
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vgrad_tests::{sweep, sweep_options, workspace};

/// Where Debian's packages put the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One HTTP/1.1 request to 127.0.0.1:`port` with a JSON body (or none); the response's
/// status and body, read to its `Content-Length` (chromedriver keeps the connection open)
/// or, without one, to the end of the connection.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "the connection closed before the headers",
            ));
        }
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            break (at + 4, length);
        }
    };
    match length {
        Some(length) => {
            while bytes.len() < head_end + length {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
        None => {
            stream.read_to_end(&mut bytes)?;
        }
    }
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        String::from_utf8_lossy(&bytes[head_end..]).into_owned(),
    ))
}

/// Polls `f` every 200 ms until it gives a value; fails after `limit`, naming `what`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// TensorBoard as `scripts/tensorboard.sh start` left it; dropping it stops it by its pid.
struct TensorBoard {
    state: tempfile::TempDir,
    url: String,
}

impl TensorBoard {
    fn start(logdir: &Path) -> TensorBoard {
        let state = tempfile::Builder::new()
            .prefix("vgrad-tensorboard-test")
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(logdir)
            .arg(state.path())
            .output()
            .unwrap();
        // From here on, Drop stops whatever the script started.
        let mut tb = TensorBoard {
            state,
            url: String::new(),
        };
        assert!(
            out.status.success(),
            "scripts/tensorboard.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tb.url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("url="))
            .expect("the script printed url=")
            .to_string();
        tb
    }

    fn port(&self) -> u16 {
        self.url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the url")
    }
}

impl Drop for TensorBoard {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .status();
    }
}

fn script() -> PathBuf {
    workspace().join("scripts/tensorboard.sh")
}

/// A chromedriver process on a free port; dropping it ends the process (by its handle).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Driver { child, port };
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            let (_, body) = http(port, "GET", "/status", None).ok()?;
            let status: Value = serde_json::from_str(&body).ok()?;
            (status["value"]["ready"] == true).then_some(())
        });
        driver
    }

    /// A WebDriver command; its `value`, failing on an error.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = http(self.port, method, path, body.as_ref()).unwrap();
        let reply: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        assert_eq!(status, 200, "{method} {path}: {reply}");
        reply["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's visible text, one text node a line, through every shadow root (TensorBoard's
/// dashboards are web components, whose contents a DOM dump leaves out).
const PAGE_TEXT: &str = "\
const out = [];
const skip = new Set(['STYLE', 'SCRIPT', 'NOSCRIPT', 'TEMPLATE']);
const walk = (node) => {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const c of node.childNodes) {
    if (c.nodeType === Node.TEXT_NODE) {
      const t = c.textContent.trim();
      if (t) out.push(t);
    } else if (c.nodeType === Node.ELEMENT_NODE && !skip.has(c.tagName)) {
      walk(c);
    }
  }
};
walk(document.body);
return out;";

#[test]
#[cfg_attr(
    not(all(chromium, tensorboard_python)),
    ignore = "needs Chromium (apt-get install chromium chromium-driver) and a Python with \
              tensorboard (`cargo xtask test` prepares one in .venv)"
)]
fn the_hparams_dashboard_lists_every_run_with_its_activation_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("browse.toml");
    std::fs::write(
        &experiment,
        "seeds = 2\n[base]\nsteps = 20\nlog_every = 10\n[axes]\nactivation = [\"sigmoid\", \"relu\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let outcome = sweep(&experiment, &sweep_options(&out, 2)).unwrap();
    assert_eq!((outcome.ran, outcome.failed), (4, 0));
    let runs = out.join("runs/browse");
    // The runs as TensorBoard names them: their folders below the sweep's.
    let mut names: Vec<String> = Vec::new();
    for point in ["relu", "sigmoid"] {
        for run in std::fs::read_dir(runs.join(point)).unwrap() {
            let name = run.unwrap().file_name().to_string_lossy().into_owned();
            names.push(format!("{point}/{name}"));
        }
    }
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");

    let tb = TensorBoard::start(&runs);
    // TensorBoard reads the folder in the background: wait until it lists every run.
    wait_for(
        "TensorBoard to load the runs",
        Duration::from_secs(60),
        || {
            let (_, body) = http(tb.port(), "GET", "/data/runs", None).ok()?;
            let listed: Vec<String> = serde_json::from_str(&body).ok()?;
            names.iter().all(|n| listed.contains(n)).then_some(())
        },
    );

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let session = driver.command(
        "POST",
        "/session",
        Some(
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1600,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }}}}),
        ),
    );
    let id = session["sessionId"]
        .as_str()
        .expect("a session id")
        .to_string();
    driver.command(
        "POST",
        &format!("/session/{id}/url"),
        Some(json!({"url": format!("{}#hparams", tb.url)})),
    );
    // The table fills in once the dashboard has fetched the experiment and the sessions.
    let text: Vec<String> = wait_for(
        "the HParams table to list the runs",
        Duration::from_secs(60),
        || {
            let value = driver.command(
                "POST",
                &format!("/session/{id}/execute/sync"),
                Some(json!({"script": PAGE_TEXT, "args": []})),
            );
            let text: Vec<String> = serde_json::from_value(value).ok()?;
            names.iter().all(|n| text.contains(n)).then_some(text)
        },
    );
    driver.command("DELETE", &format!("/session/{id}"), None);

    // The table's header, from "Trial ID" to its first row: the varied settings and the
    // metrics.
    let header = text
        .iter()
        .position(|t| t == "Trial ID")
        .expect("the table's header");
    let first_row = text.iter().position(|t| names.contains(t)).unwrap();
    let columns = &text[header..first_row];
    for column in [
        "activation",
        "seed",
        "decay ratio",
        "test accuracy",
        "outcome",
    ] {
        assert!(
            columns.iter().any(|c| c == column),
            "no column {column}: {columns:?}"
        );
    }
    // Each run's row: its name, then its cells, the activation first (the "Show Metrics"
    // checkbox has no text).
    for name in &names {
        let at = text.iter().position(|t| t == name).unwrap();
        let activation = name.split('/').next().unwrap();
        assert_eq!(
            text[at + 1],
            activation,
            "the row of {name}: {:?}",
            &text[at..]
        );
    }
}
