//! `--format html` in a real browser: Debian's chromium, headless, driven through
//! chromedriver (WebDriver). Each page must load without a console error, show the totals the
//! scenario put in (ground truth from what the test did, not from the report), list a known
//! finding, filter its table, keep hostile names as text, and leave a screenshot under
//! `target/tmp/mqtrace-html/` for a person to look at.

use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use mqtrace_analyzer::report::html::{HtmlOptions, TABLE_MAX, render_html};
use mqtrace_analyzer::{Options, Report, analyze, input};
use mqtrace_examples::demo;
use mqtrace_tracegen::{Host, Msg, Traces, cases};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A stream name that would run script if it were ever pasted into markup.
const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\">\"'&</script>";

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mqtrace-html");
    std::fs::create_dir_all(&dir).expect("output directory");
    dir
}

/// Analyses `traces` (a directory) as `mqtrace analyze --format html` does and writes the page.
fn render(traces: &Path, name: &str, trace_url: Option<&str>) -> (Report, PathBuf) {
    let files = input::discover(&[traces.to_path_buf()]).expect("trace files");
    let options = Options {
        histograms: true,
        ..Options::default()
    };
    let report = analyze(&files, &options, &|_| {}).expect("analysis");
    let page = render_html(
        &report,
        &HtmlOptions {
            trace_url: trace_url.map(str::to_owned),
        },
    )
    .expect("page");
    let path = out_dir().join(format!("{name}.html"));
    std::fs::write(&path, page).expect("write the page");
    (report, path)
}

/// chromedriver and a headless chromium session, ended (and the driver killed) on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
}

/// chromedriver's log endpoint (not in WebDriver's standard; fantoccini takes it as a custom
/// command): the console messages since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

impl Browser {
    async fn start() -> Browser {
        let driver_path = std::env::var("MQTRACE_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let chromium =
            std::env::var("MQTRACE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        for (what, path) in [("chromedriver", &driver_path), ("chromium", &chromium)] {
            assert!(
                Path::new(path).exists(),
                "{what} not found at {path}: scripts/test installs Debian's chromium and \
                 chromium-driver packages (apt-get install chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group, so that the browser it starts can be ended with it.
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            driver,
            client: None,
        };
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,900"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    browser.client = Some(client);
                    return browser;
                }
                Err(e) if Instant::now() > deadline => panic!("chromedriver at {url}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    async fn open(&self, page: &Path) {
        let url = format!("file://{}", page.display());
        self.client().goto(&url).await.expect("open the page");
    }

    /// Console messages at level SEVERE (errors) since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client()
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].to_string())
            .collect()
    }

    async fn text(&self, css: &str) -> String {
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    async fn eval(&self, script: &str) -> serde_json::Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `#shown` (the table's row count) satisfies `done`.
    async fn wait_for_rows(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = self.text("#shown").await;
            if done(&shown) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "the table never updated: {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible table rows, each as its cells' text.
    async fn rows(&self) -> Vec<Vec<String>> {
        let value = self
            .eval(
                "return Array.from(document.querySelectorAll('#findings-table tbody tr'))\
                 .map(tr => Array.from(tr.cells).map(td => td.textContent));",
            )
            .await;
        serde_json::from_value(value).expect("rows")
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        // Tall enough for the whole page's first screens: WebDriver shoots the viewport.
        self.client()
            .set_window_size(1366, 3000)
            .await
            .expect("window size");
        let png = self.client().screenshot().await.expect("screenshot");
        let path = out_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Totals by `kind/stage` as the page shows them.
    async fn totals(&self) -> std::collections::BTreeMap<String, u64> {
        let value = self
            .eval(
                "return Object.fromEntries(Array.from(document.querySelectorAll('td[data-key]'))\
                 .map(td => [td.dataset.key, Number(td.textContent)]));",
            )
            .await;
        serde_json::from_value(value).expect("totals")
    }

    /// Types `text` into the filter box, as a person would (an empty text clears it).
    async fn filter(&self, text: &str) {
        let input = self
            .client()
            .find(Locator::Id("filter"))
            .await
            .expect("filter box");
        // Select what is there and type over it: WebDriver's clear() fires no input event.
        input.send_keys("\u{E009}a").await.expect("select all");
        input.send_keys("\u{E017}").await.expect("delete");
        if !text.is_empty() {
            input.send_keys(text).await.expect("type");
        }
    }

    async fn select_kind(&self, key: &str) {
        self.eval(&format!(
            "const s = document.getElementById('kind'); \
             s.value = Array.from(s.options).find(o => o.text === {key:?}).value; \
             s.dispatchEvent(new Event('change')); return null;"
        ))
        .await;
    }
}

impl Browser {
    /// Ends the session: WebDriver closes the browser and its helper processes.
    async fn finish(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a failed assertion the session was not closed: end the driver's whole process
        // group (chromium and its helpers too), not the driver alone, or browsers pile up.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn totals_of(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    let mut all: std::collections::BTreeMap<String, u64> = mqtrace_analyzer::report::FINDING_KEYS
        .iter()
        .map(|k| (k.clone(), 0))
        .collect();
    for (k, n) in pairs {
        all.insert((*k).to_owned(), *n);
    }
    all
}

/// The analyzer's every-kind scenario, plus a stream with a hostile name whose only message
/// was never acked: every finding kind on one page, and markup that must stay text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_renders_filters_and_keeps_hostile_names_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t: Traces = cases::every_kind();
    let hostile = Msg::new("p3", HOSTILE, 1);
    t.produce(&hostile, 1, Host::PRODUCER);
    t.store_ack(&hostile, 1, "error", None, Host::PRODUCER);
    std::fs::write(dir.path().join("spans.jsonl"), t.finish()).expect("write traces");
    let (report, page) = render(
        dir.path(),
        "every-kind",
        Some("http://jaeger.invalid:16686/trace/{trace_id}"),
    );

    let browser = Browser::start().await;
    browser.open(&page).await;
    // What the scenario injected (see mqtrace_tracegen::cases::every_kind).
    let expected = totals_of(&[
        ("lost/produce", 2),
        ("lost/store", 2),
        ("lost/consume", 1),
        ("duplicate/produce", 1),
        ("duplicate/consume", 2),
        ("unobserved", 1),
        ("telemetry_gap", 1),
        ("redelivered", 2),
        ("in_flight", 4),
    ]);
    assert_eq!(browser.totals().await, expected);
    assert!(
        browser
            .text("#verdict")
            .await
            .starts_with("9 finding(s) of lost")
    );
    assert!(
        browser
            .text("#messages")
            .await
            .starts_with("21 message(s) in 3 stream(s)")
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('figure.timeline svg').length;")
            .await,
        3
    );
    assert!(
        browser
            .eval("return document.querySelectorAll('figure.histogram svg').length;")
            .await
            .as_u64()
            .is_some_and(|n| n > 0),
        "latency histograms"
    );

    // The hostile name is text: no image element, the title untouched, the name shown.
    assert_eq!(browser.eval("return document.images.length;").await, 0);
    assert!(
        browser
            .client()
            .title()
            .await
            .expect("title")
            .starts_with("mqtrace report")
    );
    let rows = browser.rows().await;
    assert_eq!(rows.len(), report.findings.len());
    assert!(rows.iter().any(|r| r[2] == HOSTILE), "{rows:?}");

    // A known finding, through the kind selector: 7 received by shipping, never settled.
    browser.select_kind("lost/consume").await;
    browser.wait_for_rows(|s| s.contains("of 1 ")).await;
    let rows = browser.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0][0].as_str(),
            rows[0][2].as_str(),
            rows[0][3].as_str(),
            rows[0][4].as_str()
        ),
        ("lost/consume", "orders", "7", "shipping")
    );
    // Its trace id links to the backend.
    let href = browser
        .eval("return document.querySelector('#findings-table tbody a').href;")
        .await;
    assert!(
        href.as_str()
            .is_some_and(|h| h.starts_with("http://jaeger.invalid:16686/trace/")),
        "{href}"
    );

    // The text filter, typed: every row left mentions billing, and billing's three
    // findings (8 processed twice, 15 and 16 in flight) are among them.
    browser.select_kind("every kind").await;
    browser.filter("billing").await;
    browser.wait_for_rows(|s| s.contains("filtered from")).await;
    let rows = browser.rows().await;
    assert!(
        rows.iter().all(|r| r.join(" ").contains("billing")),
        "{rows:?}"
    );
    let billing: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r[4] == "billing")
        .map(|r| (r[0].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        billing,
        [
            ("duplicate/consume", "8"),
            ("in_flight", "15"),
            ("in_flight", "16")
        ]
    );
    browser.filter("no such text anywhere").await;
    browser.wait_for_rows(|s| s == "no finding matches").await;

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.filter("").await;
    browser
        .wait_for_rows(|s| s.starts_with("rows 1–16 of 16"))
        .await;
    let shot = browser.screenshot("every-kind").await;
    eprintln!("screenshot: {}", shot.display());
    browser.finish().await;
}

/// The console check itself: a page whose script throws is caught, so a clean log above
/// means something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_check_sees_a_script_error() {
    let page = out_dir().join("throws.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><title>t</title><script>throw new Error('on purpose')</script>",
    )
    .expect("write");
    let browser = Browser::start().await;
    browser.open(&page).await;
    let errors = browser.console_errors().await;
    assert!(
        errors.iter().any(|e| e.contains("on purpose")),
        "{errors:?}"
    );
    browser.finish().await;
}

/// The README's demo on the Kafka mock cluster: the page's totals are the faults it injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_report_shows_the_injected_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let injected = demo::run_in(dir.path(), mqtrace::Mode::Full)
        .await
        .expect("demo scenario");
    let (_, page) = render(&dir.path().join("traces"), "demo", None);

    let browser = Browser::start().await;
    browser.open(&page).await;
    let pairs: Vec<(&str, u64)> = injected
        .by_key()
        .iter()
        .map(|(k, seqs)| (*k, seqs.len() as u64))
        .collect();
    assert_eq!(browser.totals().await, totals_of(&pairs));
    assert!(
        browser
            .eval("return document.querySelectorAll('figure.timeline svg rect').length;")
            .await
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.screenshot("demo").await;
    browser.finish().await;
}

/// More findings than the table holds: the page opens, says it capped the table, aggregates
/// the timeline, and still filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_findings_stay_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = TABLE_MAX as u64 + 10;
    let mut t = Traces::new();
    for seq in 1..=n {
        // Sent once, never acked: lost at the producer.
        t.produce(&Msg::new("p1", "bulk", seq), 1, Host::PRODUCER);
    }
    std::fs::write(dir.path().join("spans.jsonl"), t.finish()).expect("write traces");
    let (report, page) = render(dir.path(), "hundred-thousand", None);
    assert_eq!(report.findings.len() as u64, n);
    let size = std::fs::metadata(&page).map(|m| m.len()).unwrap_or(0);

    let browser = Browser::start().await;
    let started = Instant::now();
    browser.open(&page).await;
    let shown = browser
        .wait_for_rows(|s| s.starts_with("rows 1–100 of"))
        .await;
    let loaded = started.elapsed();
    assert_eq!(shown, format!("rows 1–100 of {TABLE_MAX}"));
    assert_eq!(browser.totals().await["lost/produce"], n);
    assert!(
        browser
            .text("#capped")
            .await
            .contains(&format!("of {n} findings"))
    );
    assert!(
        browser
            .eval("return document.querySelectorAll('svg rect').length;")
            .await
            .as_u64()
            .is_some_and(|r| r < 2_000),
        "the timeline aggregates"
    );
    let started = Instant::now();
    browser.filter("99999").await;
    let shown = browser.wait_for_rows(|s| s.contains("filtered from")).await;
    let filtered = started.elapsed();
    assert!(
        browser.rows().await.iter().any(|r| r[3] == "99999"),
        "{shown}"
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.screenshot("hundred-thousand").await;
    browser.finish().await;
    eprintln!(
        "100,010 findings: page {:.1} MB, opened in {:.2} s, filtered in {:.2} s",
        size as f64 / 1e6,
        loaded.as_secs_f64(),
        filtered.as_secs_f64()
    );
}
