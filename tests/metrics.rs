//! The operational endpoints over real HTTP, and a real Prometheus scraping them.
//!
//! - `/healthz`, `/readyz` and `/metrics` served by [`git_controller::http::router`] on a free
//!   loopback port, checked with plain HTTP requests.
//! - A real Prometheus (`/usr/bin/prometheus`, Debian package `prometheus`) started by the test
//!   with a generated config that scrapes a target every second; the test asks Prometheus' HTTP
//!   API for `up == 1` and `gitcontroller_reconcile_duration_seconds_count > 0`, and evaluates
//!   every query of the Grafana dashboard against what it scraped.
//!
//! The scrape target is a parameter of [`check_prometheus_scrapes`]: today the in-process
//! server, later the `git-controller run --metrics-addr ...` binary reconciling a
//! GitRepository.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use git_controller::http::{Health, LeaderState, router, serve_listener};
use git_controller::metrics::{FAMILIES, Metrics};
use serde_json::Value;
use tokio::sync::oneshot;

/// A response to [`http`]: status, headers (lower-case names) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request (the server closes the connection after the response, no chunking),
/// enough for `/metrics` and Prometheus' API without an HTTP client dependency. Blocking I/O
/// on the blocking pool, with 10 s timeouts.
async fn http(addr: SocketAddr, method: &str, path_and_query: &str) -> Response {
    let what = format!("{method} http://{addr}{path_and_query}");
    let request = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: gitcontroller-tests\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let raw = tokio::task::spawn_blocking(move || {
        let timeout = Some(Duration::from_secs(10));
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Ok::<_, std::io::Error>(raw)
    })
    .await
    .expect("the request thread")
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: not an HTTP response: {raw}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line in {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    http(addr, "GET", path).await
}

/// The router served on a free loopback port until the returned sender is dropped or fired.
async fn start_server(
    router: Router,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_listener(listener, router, async {
            let _ = stopped.await;
        })
        .await
        .expect("serving");
    });
    (addr, stop, task)
}

/// Uses every family once, for repository `demo/platform`.
fn record_a_reconcile(metrics: &Metrics) {
    let timer = metrics.reconcile_timer("demo", "platform");
    metrics.git_operation("demo", "platform", "fetch", 0.12);
    metrics.set_objects("demo", "platform", 5, 3, 1);
    metrics.sync_operation("demo", "platform", "kubernetes", "apply");
    metrics.sync_operation("demo", "platform", "git", "write");
    metrics.git_operation("demo", "platform", "commit", 0.01);
    metrics.git_operation("demo", "platform", "push", 0.2);
    metrics.push_retries("demo", "platform", 1);
    metrics.reconcile_failed("demo", "platform", "git");
    metrics.set_watched_resources(3);
    metrics.set_ready("demo", "platform", true);
    metrics.sync_triggered("demo", "platform", "watch");
    metrics.apply_confirmations("demo", "platform", "remembered", 4);
    drop(timer);
}

#[tokio::test]
async fn endpoints_serve_health_readiness_and_metrics() {
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    // The lead's webhook router merges in: `router` must stay composable.
    let app = router(Arc::clone(&metrics), health.clone())
        .merge(Router::new().route("/hook", post(|| async { "queued" })));
    let (addr, stop, task) = start_server(app).await;

    let r = get(addr, "/healthz").await;
    assert_eq!((r.status, r.body.trim()), (200, "ok"));

    // Not ready until the API server was reached; lost leadership is not ready either.
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("API server"), "{}", r.body);
    health.set_api_reachable(true);
    assert_eq!(get(addr, "/readyz").await.status, 200);
    for (state, status) in [
        (LeaderState::Standby, 200),
        (LeaderState::Leading, 200),
        (LeaderState::Lost, 503),
        (LeaderState::Disabled, 200),
    ] {
        health.set_leader_state(state);
        let r = get(addr, "/readyz").await;
        assert_eq!(r.status, status, "{state:?}: {}", r.body);
    }
    health.set_api_reachable(false);
    assert_eq!(get(addr, "/readyz").await.status, 503);
    // Liveness does not depend on readiness.
    assert_eq!(get(addr, "/healthz").await.status, 200);

    // /metrics: text format; only the label-less gauge exists before anything is recorded.
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        r.body.contains("gitcontroller_watched_resources 0"),
        "{}",
        r.body
    );
    record_a_reconcile(&metrics);
    let r = get(addr, "/metrics").await;
    for family in FAMILIES {
        assert!(
            r.body.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{}",
            r.body
        );
    }
    for line in [
        r#"gitcontroller_reconcile_duration_seconds_count{name="platform",namespace="demo"} 1"#,
        r#"gitcontroller_objects{direction="kubernetes",name="platform",namespace="demo"} 5"#,
        r#"gitcontroller_objects{direction="git",name="platform",namespace="demo"} 3"#,
        r#"gitcontroller_objects{direction="ignored",name="platform",namespace="demo"} 1"#,
        r#"gitcontroller_sync_operations_total{direction="git",name="platform",namespace="demo",operation="write"} 1"#,
        r#"gitcontroller_git_operation_duration_seconds_count{name="platform",namespace="demo",operation="push"} 1"#,
        r#"gitcontroller_git_push_retries_total{name="platform",namespace="demo"} 1"#,
        r#"gitcontroller_reconcile_errors_total{category="git",name="platform",namespace="demo"} 1"#,
        "gitcontroller_watched_resources 3",
        r#"gitcontroller_ready{name="platform",namespace="demo"} 1"#,
    ] {
        assert!(
            r.body.lines().any(|l| l == line),
            "no `{line}` in:\n{}",
            r.body
        );
    }
    // A deleted repository disappears.
    metrics.forget("demo", "platform");
    let r = get(addr, "/metrics").await;
    assert!(!r.body.contains("platform"), "{}", r.body);

    let r = http(addr, "POST", "/hook").await;
    assert_eq!((r.status, r.body.as_str()), (200, "queued"));
    assert_eq!(get(addr, "/nope").await.status, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the server stops on shutdown")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Prometheus server started for one test, scraping a target every second; killed when
/// dropped.
struct Prometheus {
    _child: KillOnDrop,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        path.exists(),
        "{} not found: the metrics test needs a real Prometheus \
         (`apt-get install -y --no-install-recommends prometheus`, or set PROMETHEUS)",
        path.display()
    );
    path
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Prometheus {
    /// Starts Prometheus with job `git-controller` scraping `target` (`host:port`) every
    /// second, and waits until it is ready.
    async fn start(target: &str) -> Self {
        let binary = prometheus_binary();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: git-controller\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log_path = dir.path().join("prometheus.log");
        // The port is probed free, then handed over: retry if something took it meanwhile.
        for _attempt in 0..3 {
            let addr: SocketAddr = ([127, 0, 0, 1], free_loopback_port()).into();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = KillOnDrop(
                Command::new(&binary)
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.path().join("data").display()
                    ))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--log.level=warn")
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display())),
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.0.try_wait() {
                    eprintln!(
                        "prometheus exited early ({status}):\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok()
                    && get(addr, "/-/ready").await.status == 200
                {
                    return Prometheus {
                        _child: child,
                        addr,
                        _dir: dir,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "prometheus not ready within 30 s:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!(
            "prometheus did not start in 3 attempts:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// An instant query through `/api/v1/query`; `data.result` of a successful answer.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let r = get(
            self.addr,
            &format!("/api/v1/query?query={}", urlencode(expr)),
        )
        .await;
        let answer: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{expr}: not JSON ({e}): {}", r.body));
        assert_eq!(
            (r.status, &answer["status"]),
            (200, &Value::from("success")),
            "query {expr} failed: {answer:#}"
        );
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `expr` until it returns at least one sample (or fails after `timeout`).
    async fn wait_for(&self, expr: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(expr).await;
            if !result.is_empty() {
                return result;
            }
            if Instant::now() > deadline {
                let targets = get(self.addr, "/api/v1/targets").await.body;
                panic!("`{expr}` still empty after {timeout:?}; targets: {targets}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sample_value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {sample}"))
}

/// The PromQL of every dashboard panel and variable, with Grafana's variables replaced by
/// values Prometheus understands.
fn dashboard_queries() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("charts/git-controller/dashboards/git-controller.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(s)) => out.push(s.clone()),
                        ("definition", Value::String(s)) => {
                            // label_values(<selector>, label) -> the series selector itself.
                            let inner = s
                                .strip_prefix("label_values(")
                                .and_then(|s| s.rsplit_once(','))
                                .map(|(sel, _)| sel.to_owned())
                                .unwrap_or_else(|| s.clone());
                            out.push(inner);
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard, &mut out);
    out.into_iter()
        .map(|q| {
            q.replace("$__rate_interval", "1m")
                .replace("$namespace", ".*")
                .replace("$repository", ".*")
        })
        .collect()
}

/// Starts Prometheus scraping `target` and checks what it sees: the target is up and a
/// reconcile of `namespace/name` was recorded. Every dashboard query must be valid PromQL;
/// with `every_dashboard_query_has_data` it must also return data (only when every family has
/// a series, e.g. after [`record_a_reconcile`]: a real controller exports error and retry
/// series only once an error or a retry happened).
/// `target` is any `host:port` serving `/metrics`: the in-process server below, or the
/// controller binary once it reconciles a GitRepository.
async fn check_prometheus_scrapes(
    target: &str,
    namespace: &str,
    name: &str,
    every_dashboard_query_has_data: bool,
) {
    let prometheus = Prometheus::start(target).await;
    let timeout = Duration::from_secs(30);

    let up = prometheus
        .wait_for(r#"up{job="git-controller"} == 1"#, timeout)
        .await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["metric"]["instance"], target);

    let count = prometheus
        .wait_for(
            &format!(
                r#"gitcontroller_reconcile_duration_seconds_count{{namespace="{namespace}",name="{name}"}} > 0"#
            ),
            timeout,
        )
        .await;
    assert!(sample_value(&count[0]) >= 1.0, "{count:?}");

    // The dashboard's queries are valid PromQL over the scraped families (query() fails the
    // test otherwise) and return data. Rates need two samples in the window: wait_for polls.
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:#?}");
    for q in &queries {
        if every_dashboard_query_has_data {
            prometheus.wait_for(q, timeout).await;
        } else {
            prometheus.query(q).await;
        }
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_metrics_endpoint() {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let health = Health::new();
    health.set_api_reachable(true);
    let (addr, stop, task) = start_server(router(Arc::clone(&metrics), health)).await;
    record_a_reconcile(&metrics);

    check_prometheus_scrapes(&addr.to_string(), "demo", "platform", true).await;

    stop.send(()).unwrap();
    task.await.unwrap();
    eprintln!("prometheus scrape test took {:?}", started.elapsed());
}

/// The real thing: `git-controller run` reconciling a GitRepository, scraped by a real
/// Prometheus.
#[tokio::test]
async fn prometheus_scrapes_a_running_controller_after_a_reconcile() {
    use gitcontroller_testkit::cluster::{TestNamespace, apply_crds, client};
    use gitcontroller_testkit::git_server::GitDaemon;

    let client = client().await;
    apply_crds(&client, &git_controller::api::crds()).await;
    let ns = TestNamespace::new(&client, "prom").await;
    let git = GitDaemon::start();
    git.seed(
        &[("cm.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: {}\ndata:\n  k: v\n", ns.name()))],
        "init",
    );
    common::apply_yaml(
        &client,
        ns.name(),
        &format!(
            "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: platform\nspec:\n  url: {}\n  interval: 5s\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: all\nspec:\n  repositoryRef: {{name: platform}}\n  namespaces: [{}]\n  kinds: [ConfigMap]\n  syncTo: kubernetes\n",
            git.url(),
            ns.name()
        ),
    )
    .await;
    let controller = common::ControllerProcess::start(ns.name());
    let target = format!("127.0.0.1:{}", controller.metrics_port);
    check_prometheus_scrapes(&target, ns.name(), "platform", false).await;
    let ready = get(target.parse().unwrap(), "/metrics").await;
    assert!(
        ready.body.contains(&format!(
            "gitcontroller_ready{{name=\"platform\",namespace=\"{}\"}} 1",
            ns.name()
        )),
        "{}",
        ready.body
    );
}
