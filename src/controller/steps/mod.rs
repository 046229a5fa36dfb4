//! The steps of one sync, in order, run in a loop: resolve rules → fetch → observe live → plan
//! → confirm (with the API server) → apply → write back. Every step has the same signature: it reads the outputs of earlier
//! steps from the [`SyncState`], writes its own, and returns [`Flow::Continue`] or
//! [`Flow::Stop`]. No step writes a status or publishes an Event: the reconcile does that once,
//! from the final report.
//!
//! To add a step: write `async fn name(ctx: &Context, state: &mut SyncState) -> Result<Flow>`
//! in a file of this folder, give it an output field in `SyncState` if later steps need one,
//! and add a line to [`STEPS`] where it belongs.

mod apply;
mod confirm;
mod fetch;
mod git;
mod observe;
mod plan;
mod resolve;
mod write_back;

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use tracing::Instrument;

use super::context::Context;
use super::report::Stop;
use super::state::{Flow, Mode, SyncState};
use crate::api::GitRepository;
use crate::error::Result;

pub use fetch::interval as fetch_interval;

/// The signature every step has.
pub type StepFn<C, S> = for<'a> fn(&'a C, &'a mut S) -> BoxFuture<'a, Result<Flow>>;

/// A named step.
pub struct Step<C: 'static, S: 'static> {
    /// The name in logs and spans.
    pub name: &'static str,
    /// The step.
    pub run: StepFn<C, S>,
}

impl<C, S> Clone for Step<C, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, S> Copy for Step<C, S> {}

/// The steps of a sync, in order.
pub const STEPS: &[Step<Context, SyncState>] = &[
    Step {
        name: "resolve-rules",
        run: |ctx, state| Box::pin(resolve::resolve_rules(ctx, state)),
    },
    Step {
        name: "fetch",
        run: |ctx, state| Box::pin(fetch::fetch(ctx, state)),
    },
    Step {
        name: "observe-live",
        run: |ctx, state| Box::pin(observe::observe_live(ctx, state)),
    },
    Step {
        name: "plan",
        run: |ctx, state| Box::pin(plan::plan(ctx, state)),
    },
    Step {
        name: "confirm",
        run: |ctx, state| Box::pin(confirm::confirm(ctx, state)),
    },
    Step {
        name: "apply",
        run: |ctx, state| Box::pin(apply::apply(ctx, state)),
    },
    Step {
        name: "write-back",
        run: |ctx, state| Box::pin(write_back::write_back(ctx, state)),
    },
];

/// How a run of steps ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every step ran.
    Completed,
    /// The named step stopped the run; the steps after it did not run.
    Stopped {
        /// The step that stopped.
        step: &'static str,
        /// Why.
        why: Stop,
    },
}

/// Runs `steps` in order, each in a span named after it, until one stops or fails.
pub async fn run_steps<C, S>(steps: &[Step<C, S>], ctx: &C, state: &mut S) -> Result<Ended> {
    for step in steps {
        let started = Instant::now();
        let span = tracing::debug_span!("step", step = step.name);
        let flow = (step.run)(ctx, state).instrument(span).await;
        tracing::trace!(step = step.name, elapsed = ?started.elapsed(), "step done");
        if let Flow::Stop(why) = flow? {
            tracing::debug!(step = step.name, why = why.as_str(), "steps stopped");
            return Ok(Ended::Stopped {
                step: step.name,
                why,
            });
        }
    }
    Ok(Ended::Completed)
}

/// Runs every step of one sync of `repo` and returns its state: what each step found and did.
pub async fn sync(ctx: &Context, repo: Arc<GitRepository>, mode: Mode) -> Result<SyncState> {
    let mut state = SyncState::new(ctx, repo, mode)?;
    if let Ended::Stopped { why, .. } = run_steps(STEPS, ctx, &mut state).await? {
        state.stopped = Some(why);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context that says where to stop, and a state that records the steps that ran.
    struct StopAt(Option<&'static str>);
    #[derive(Default)]
    struct Ran(Vec<&'static str>);

    async fn record(name: &'static str, ctx: &StopAt, state: &mut Ran) -> Result<Flow> {
        state.0.push(name);
        if name == "fail" {
            return Err(crate::Error::Internal("failed".into()));
        }
        Ok(if ctx.0 == Some(name) {
            Flow::Stop(Stop::Suspended)
        } else {
            Flow::Continue
        })
    }

    const TEST_STEPS: &[Step<StopAt, Ran>] = &[
        Step {
            name: "one",
            run: |c, s| Box::pin(record("one", c, s)),
        },
        Step {
            name: "two",
            run: |c, s| Box::pin(record("two", c, s)),
        },
        Step {
            name: "three",
            run: |c, s| Box::pin(record("three", c, s)),
        },
    ];

    fn run(ctx: StopAt, steps: &[Step<StopAt, Ran>]) -> (Result<Ended>, Vec<&'static str>) {
        let mut ran = Ran::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ended = runtime.block_on(run_steps(steps, &ctx, &mut ran));
        (ended, ran.0)
    }

    #[test]
    fn every_step_runs_in_order_when_none_stops() {
        let (ended, ran) = run(StopAt(None), TEST_STEPS);
        assert_eq!(ended.unwrap(), Ended::Completed);
        assert_eq!(ran, ["one", "two", "three"]);
    }

    #[test]
    fn a_stop_skips_the_later_steps_and_says_which_step_stopped() {
        let (ended, ran) = run(StopAt(Some("two")), TEST_STEPS);
        assert_eq!(
            ended.unwrap(),
            Ended::Stopped {
                step: "two",
                why: Stop::Suspended
            }
        );
        assert_eq!(ran, ["one", "two"]);
    }

    #[test]
    fn an_error_skips_the_later_steps_and_is_returned() {
        let steps: &[Step<StopAt, Ran>] = &[
            Step {
                name: "fail",
                run: |c, s| Box::pin(record("fail", c, s)),
            },
            TEST_STEPS[0],
        ];
        let (ended, ran) = run(StopAt(None), steps);
        assert!(ended.is_err());
        assert_eq!(ran, ["fail"]);
    }

    #[test]
    fn the_sync_steps_run_in_the_documented_order() {
        let names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "resolve-rules",
                "fetch",
                "observe-live",
                "plan",
                "confirm",
                "apply",
                "write-back"
            ]
        );
    }
}
