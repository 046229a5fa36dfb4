//! Test harness shared by every integration test of git-controller.
//!
//! - [`cluster`]: a Kubernetes client from `KUBECONFIG` and a fresh, labelled namespace per test.
//! - [`git_server`]: real Git servers on free loopback ports (git daemon, http-backend, sshd)
//!   and helpers to seed a bare repository and read it back.
//!
//! Nothing here mocks: tests run against whatever cluster `KUBECONFIG` names (kubelite in CI,
//! kind or a dev cluster elsewhere). In CI (`CI=true`) a missing cluster fails the test.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod git_server;
