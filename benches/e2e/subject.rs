//! The controller under measurement: `git-controller run` as a child process with the
//! product's default settings (unlike the tests, which batch for 300 ms), logging at `info`
//! (`E2E_CONTROLLER_LOG` sets its `RUST_LOG`; with `E2E_KEEP_LOGS=<dir>` each controller's
//! log is kept there as `controller-<pid>.log`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::use_test_cluster;
use gitcontroller_testkit::git_server::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::measure::ProcSample;

/// A running controller, killed on drop.
pub struct Controller {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    metrics_port: u16,
}

impl Controller {
    /// Starts `binary` limited to `namespace`, with `extra` flags.
    pub fn start(binary: &str, namespace: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("controller.log");
        let metrics_port = free_port();
        let child = use_test_cluster(&mut Command::new(binary))
            .args(["run", "--namespace", namespace])
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("E2E_CONTROLLER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        Self {
            child,
            log,
            _dir: dir,
            metrics_port,
        }
    }

    /// Its memory and CPU time now.
    pub fn sample(&self) -> ProcSample {
        ProcSample::of(self.child.id())
    }

    /// Waits until `/readyz` answers 200 (discovery done, API server reachable).
    pub async fn ready(&self) {
        let started = Instant::now();
        while !self
            .get("/readyz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the controller was not ready within 60 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Objects this controller created in the cluster so far.
    pub async fn created(&self) -> f64 {
        self.metric(
            "gitcontroller_sync_operations_total",
            "operation=\"create\"",
        )
        .await
    }

    /// The sum of the samples of `name` whose labels contain `labels` on `/metrics`.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let body = self.get("/metrics").await.unwrap_or_default();
        body.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']) && rest.contains(labels))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// How many reconciles have finished.
    pub async fn reconciles(&self) -> f64 {
        self.metric("gitcontroller_reconcile_duration_seconds_count", "")
            .await
    }

    async fn get(&self, path: &str) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(dir) = std::env::var("E2E_KEEP_LOGS") {
            let kept =
                std::path::Path::new(&dir).join(format!("controller-{}.log", self.child.id()));
            let _ = std::fs::create_dir_all(&dir);
            if let Err(error) = std::fs::copy(&self.log, &kept) {
                eprintln!("keeping the controller log in {}: {error}", kept.display());
            }
        }
        if std::thread::panicking() {
            eprintln!("--- controller log ---\n{}", self.log_tail());
        }
    }
}
