//! Helpers shared by the benchmarks of the Git layer.

use std::process::Command;
use std::time::Duration;

/// Runs a `git` command and fails with its stderr if it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run git");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The median.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The `n`-th positional argument of the bench (flags such as `--bench` skipped), or
/// `default`.
pub fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}
