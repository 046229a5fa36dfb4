//! Test harness shared by every integration test of git-controller.
//!
//! - [`cluster`]: a Kubernetes client for the cluster in `KUBECONFIG`, or, without one, for a
//!   kubelite API server started once per test run ([`run_cluster`]); a fresh, labelled
//!   namespace per test.
//! - [`git_server`]: real Git servers on free loopback ports (git daemon, http-backend, sshd)
//!   and helpers to seed a bare repository and read it back.
//!
//! Nothing here mocks: tests run against a real API server (the one in `KUBECONFIG`, or the run's
//! own kubelite) and real Git servers. A test that cannot have a cluster fails; none skips.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod git_server;
pub mod run_cluster;
