//! git-controller: keeps Kubernetes objects and a Git repository in sync in both directions,
//! per object and per field.
//!
//! The planner (`gitcontroller_sync`) and the Git layer (`gitcontroller_git`) hold the domain
//! logic; this crate wires them to the Kubernetes API.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod app;
pub mod cluster;
pub mod controller;
pub mod diff;
mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod webhook;

pub use error::{Category, Error, Result};
