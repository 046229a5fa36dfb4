//! The steps of one sync, in order, run in a loop: resolve rules → watch live (start the
//! watchers, whose first lists run during the fetch) → fetch → observe live → plan → confirm
//! (with the API server) → apply → write back. Every step has the same signature: it reads the outputs of earlier
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

use std::future::Future;
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
        name: "watch-live",
        run: |ctx, state| Box::pin(observe::watch_live(ctx, state)),
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

/// The first step that writes to the cluster: the steps before it only read (the confirm
/// step's dry runs write nothing).
pub const FIRST_WRITING_STEP: &str = "apply";

/// Runs every step of one sync of `repo` and returns its state: what each step found and did.
pub async fn sync(ctx: &Context, repo: Arc<GitRepository>, mode: Mode) -> Result<SyncState> {
    let nothing_before = async { Ok::<(), std::convert::Infallible>(()) };
    match sync_after(ctx, repo, mode, nothing_before).await {
        Ok(synced) => synced,
    }
}

/// [`sync`], with `before_writes` run alongside the steps that only read and finished before
/// [`FIRST_WRITING_STEP`]: a write that must precede the sync's own (the finalizer) without
/// adding its round trip to the sync. When it fails, nothing was written and its error is the
/// outer one (the sync's own outcome does not matter then).
pub async fn sync_after<E>(
    ctx: &Context,
    repo: Arc<GitRepository>,
    mode: Mode,
    before_writes: impl Future<Output = std::result::Result<(), E>>,
) -> std::result::Result<Result<SyncState>, E> {
    let mut state = match SyncState::new(ctx, repo, mode) {
        Ok(state) => state,
        Err(error) => {
            before_writes.await?;
            return Ok(Err(error));
        }
    };
    let ended = run_steps_after(STEPS, FIRST_WRITING_STEP, ctx, &mut state, before_writes).await?;
    Ok(ended.map(|ended| {
        if let Ended::Stopped { why, .. } = ended {
            state.stopped = Some(why);
        }
        state
    }))
}

/// Runs `steps` like [`run_steps`], `before_writes` alongside the steps before the one named
/// `first_writing`; that one and the rest run only once both are done, and only when
/// `before_writes` succeeded (else its error is the outer one) and no step stopped or failed.
pub async fn run_steps_after<C, S, E>(
    steps: &[Step<C, S>],
    first_writing: &str,
    ctx: &C,
    state: &mut S,
    before_writes: impl Future<Output = std::result::Result<(), E>>,
) -> std::result::Result<Result<Ended>, E> {
    let first = steps
        .iter()
        .position(|step| step.name == first_writing)
        .unwrap_or(steps.len());
    let (reading, writing) = steps.split_at(first);
    let (read, ready) = futures::join!(run_steps(reading, ctx, state), before_writes);
    ready?;
    Ok(match read {
        Ok(Ended::Completed) => run_steps(writing, ctx, state).await,
        other => other,
    })
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

    /// A context that logs, in order, the steps and the write that must come first.
    #[derive(Default)]
    struct Logged {
        log: std::sync::Mutex<Vec<&'static str>>,
        /// Notified by step "two": the write waits for it, so it can only finish while
        /// the reading steps run alongside it.
        two_ran: tokio::sync::Notify,
    }

    async fn logged(name: &'static str, ctx: &Logged, _: &mut Ran) -> Result<Flow> {
        ctx.log.lock().unwrap().push(name);
        if name == "two" {
            ctx.two_ran.notify_one();
        }
        tokio::task::yield_now().await;
        Ok(Flow::Continue)
    }

    const LOGGED_STEPS: &[Step<Logged, Ran>] = &[
        Step {
            name: "one",
            run: |c, s| Box::pin(logged("one", c, s)),
        },
        Step {
            name: "two",
            run: |c, s| Box::pin(logged("two", c, s)),
        },
        Step {
            name: "write",
            run: |c, s| Box::pin(logged("write", c, s)),
        },
    ];

    type After = std::result::Result<Result<Ended>, crate::Error>;

    fn run_after(fail: bool) -> (After, Vec<&'static str>) {
        let ctx = Logged::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let ended = runtime.block_on(async {
            let before = async {
                ctx.two_ran.notified().await;
                ctx.log.lock().unwrap().push("finalizer");
                if fail {
                    Err(crate::Error::Internal("conflict".into()))
                } else {
                    Ok(())
                }
            };
            let mut ran = Ran::default();
            let steps = run_steps_after(LOGGED_STEPS, "write", &ctx, &mut ran, before);
            tokio::time::timeout(std::time::Duration::from_secs(5), steps)
                .await
                .expect("the write runs alongside the reading steps, not after them")
        });
        (ended, ctx.log.into_inner().unwrap())
    }

    #[test]
    fn the_write_before_runs_alongside_the_reading_steps_and_ends_before_the_writing_ones() {
        let (ended, log) = run_after(false);
        assert_eq!(ended.unwrap().unwrap(), Ended::Completed);
        assert_eq!(log, ["one", "two", "finalizer", "write"]);
    }

    #[test]
    fn a_failed_write_before_stops_the_sync_before_the_writing_steps() {
        let (ended, log) = run_after(true);
        assert!(ended.is_err(), "the write's error is the outer one");
        assert_eq!(log, ["one", "two", "finalizer"]);
    }

    #[test]
    fn the_sync_steps_start_writing_at_apply() {
        let first = STEPS
            .iter()
            .position(|step| step.name == FIRST_WRITING_STEP)
            .expect("the first writing step is one of the steps");
        let reading: Vec<_> = STEPS[..first].iter().map(|s| s.name).collect();
        assert_eq!(
            reading,
            [
                "resolve-rules",
                "watch-live",
                "fetch",
                "observe-live",
                "plan",
                "confirm"
            ]
        );
    }

    #[test]
    fn the_sync_steps_run_in_the_documented_order() {
        let names: Vec<_> = STEPS.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "resolve-rules",
                "watch-live",
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
