//! Step 7: the plan's Git side — one commit, pushed without force, re-planned on the current
//! remote head on every attempt. With writes off, the files it would commit.

use gitcontroller_git::{Author, FileChange, Repository, Snapshot, edit_files};
use gitcontroller_sync::{GitAction, ObjectId, Plan};

use super::super::context::Context;
use super::super::report::{GitOutcome, Stop};
use super::super::state::{Flow, Mode, SyncState, needs};
use super::git::{repo_spec, with_git};
use crate::error::{Error, Result};

/// The file changes that carry out a plan's Git actions, with the objects written and
/// removed.
fn file_changes(plan: Plan) -> (Vec<FileChange>, Vec<ObjectId>, Vec<ObjectId>) {
    let mut written = Vec::new();
    let mut removed = Vec::new();
    let changes = plan
        .to_git
        .into_iter()
        .map(|action| match action {
            GitAction::Write {
                id,
                file,
                doc_index,
                object,
                ..
            } => {
                let subject = id.to_string();
                written.push(id);
                FileChange::Put {
                    path: file,
                    doc_index,
                    object,
                    subject,
                }
            }
            GitAction::Remove {
                id,
                file,
                doc_index,
            } => {
                let subject = id.to_string();
                removed.push(id);
                FileChange::Remove {
                    path: file,
                    doc_index,
                    subject,
                }
            }
        })
        .collect();
    (changes, written, removed)
}

/// Fills `state.written`.
pub async fn write_back(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let planned = needs(&state.planned, "plan")?;
    if planned.plan.to_git.is_empty() {
        return Ok(Flow::Continue);
    }
    if state.mode == Mode::DryRun {
        let snapshot = &needs(&state.source, "fetch")?.snapshot;
        let (changes, written, removed) = file_changes(planned.plan.clone());
        state.written = Some(GitOutcome {
            preview: edit_files(snapshot, &changes)?,
            written,
            removed,
            ..GitOutcome::default()
        });
        return Ok(Flow::Continue);
    }

    let inputs = planned.inputs.clone();
    let gate = state.writer.gate().clone();
    let spec = repo_spec(
        &state.repo,
        &ctx.client,
        &ctx.config.cache_dir,
        ctx.config.tenancy.allow_local_urls,
    )
    .await?;
    let author = Author {
        name: state.repo.spec.author.name.clone(),
        email: state.repo.spec.author.email.clone(),
    };
    let prefix = state.repo.spec.commit_message.clone();
    let started = std::time::Instant::now();
    let pushed = with_git(&state.repository, move || -> Result<_> {
        let mut git = Repository::open(spec)?;
        let mut written = Vec::new();
        let mut removed = Vec::new();
        // Re-derived from the current remote head on every attempt: a push that lost a race
        // is planned again, never replayed. The gate is asked right before each commit is
        // built and pushed.
        let mut derive = |snapshot: &Snapshot| -> Result<Vec<FileChange>> {
            gate.check()?;
            let changes;
            (changes, written, removed) = file_changes(inputs.plan(snapshot).plan);
            Ok(changes)
        };
        let outcome = git.commit_and_push(&author, prefix.as_deref(), &mut derive)?;
        Ok((outcome, written, removed))
    })
    .await;
    let (outcome, written, removed) = match pushed {
        Ok(pushed) => pushed,
        Err(Error::WritesNotAllowed) => return Ok(Flow::Stop(Stop::NotLeader)),
        Err(error) => return Err(error),
    };
    let (namespace, name) = (&state.key.namespace, &state.key.name);
    ctx.metrics
        .git_operation(namespace, name, "push", started.elapsed().as_secs_f64());
    let mut git = GitOutcome {
        push_retries: outcome.retries,
        ..GitOutcome::default()
    };
    if let Some(commit) = outcome.commit {
        state.repository.pushed();
        for _ in &written {
            ctx.metrics.sync_operation(namespace, name, "git", "write");
        }
        for _ in &removed {
            ctx.metrics.sync_operation(namespace, name, "git", "remove");
        }
        git.commit = Some(commit);
        git.written = written;
        git.removed = removed;
    }
    state.written = Some(git);
    Ok(Flow::Continue)
}
