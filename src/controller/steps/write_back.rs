//! Step 7: the plan's Git side — one commit, pushed without force, re-planned on the current
//! remote head whenever it is not the commit the plan step planned on (a push that lost a
//! race included). With writes off, the files it would commit.

use std::sync::Arc;

use gitcontroller_git::{Author, FileChange, Repository, Snapshot, edit_files};
use gitcontroller_sync::{GitAction, ObjectId};

use super::super::context::Context;
use super::super::report::{GitOutcome, Stop};
use super::super::state::{Flow, Mode, SyncState, needs};
use super::git::{sync_repo_spec, with_git};
use crate::error::{Error, Result};

/// The file changes that carry out a plan's Git actions, with the objects written and
/// removed.
fn file_changes(to_git: Vec<GitAction>) -> (Vec<FileChange>, Vec<ObjectId>, Vec<ObjectId>) {
    let mut written = Vec::new();
    let mut removed = Vec::new();
    let changes = to_git
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

/// The Git actions to carry out on `snapshot` (the remote head of a push attempt): the plan
/// step's, taken once, when it is the commit they were planned on; else a new plan.
fn actions_on(
    snapshot: &Snapshot,
    planned_on: &str,
    planned: &mut Option<Vec<GitAction>>,
    replan: impl FnOnce(&Snapshot) -> Result<Vec<GitAction>>,
) -> Result<Vec<GitAction>> {
    match planned.take() {
        Some(actions) if snapshot.commit == planned_on => Ok(actions),
        _ => replan(snapshot),
    }
}

/// Fills `state.written`.
pub async fn write_back(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let planned = needs(&state.planned, "plan")?;
    if planned.plan.to_git.is_empty() {
        return Ok(Flow::Continue);
    }
    if state.mode == Mode::DryRun {
        let snapshot = &needs(&state.source, "fetch")?.snapshot;
        let (changes, written, removed) = file_changes(planned.plan.to_git.clone());
        state.written = Some(GitOutcome {
            preview: edit_files(snapshot, &changes)?,
            written,
            removed,
            ..GitOutcome::default()
        });
        return Ok(Flow::Continue);
    }

    let inputs = planned.inputs.clone();
    // The plan step planned on this commit: while the remote head is still there, its Git
    // actions stand and nothing is planned or read again.
    let current = needs(&state.source, "fetch")?.snapshot.clone();
    let planned_on = current.commit.clone();
    let mut planned_actions = Some(planned.plan.to_git.clone());
    let known = state.repository.parse_cache().known(&inputs.types);
    let gate = state.writer.gate().clone();
    let spec = sync_repo_spec(ctx, state).await?;
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
        // Derived from the current remote head on every attempt: the plan step's actions on
        // the head it planned on, else a new plan; a push that lost a race is planned again,
        // never replayed. The snapshots leave out the text of files already parsed. The gate
        // is asked right before each commit is built and pushed.
        let mut derive = |snapshot: &Snapshot| -> Result<Vec<FileChange>> {
            gate.check()?;
            let actions = actions_on(snapshot, &planned_on, &mut planned_actions, |s| {
                Ok(inputs.plan(s)?.plan.to_git)
            })?;
            let changes;
            (changes, written, removed) = file_changes(actions);
            Ok(changes)
        };
        // While the head is the commit planned on, the snapshot planned on is handed in
        // rather than read again (it was read with the same `known`).
        let outcome = git.commit_and_push_on(
            &author,
            prefix.as_deref(),
            &known,
            Some(&current),
            &mut derive,
        )?;
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
        // With the pushed commit's snapshot derived, the next sync plans against it: our own
        // push costs no fetch. Without it, the next sync fetches.
        match outcome.snapshot {
            Some(snapshot) => state.repository.pushed_snapshot(Arc::new(snapshot)),
            None => state.repository.pushed(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(name: &str) -> GitAction {
        GitAction::Remove {
            id: ObjectId::new("", "ConfigMap", Some("ns"), name),
            file: format!("{name}.yaml"),
            doc_index: 0,
        }
    }

    fn at(commit: &str) -> Snapshot {
        Snapshot {
            commit: commit.into(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_plan_steps_actions_are_used_once_and_only_on_the_commit_they_were_planned_on() {
        let replanned = |_: &Snapshot| Ok(vec![remove("replanned")]);
        let mut planned = Some(vec![remove("planned")]);
        // The head moved before the first attempt: planned again on the new head.
        let actions = actions_on(&at("new"), "old", &mut planned, replanned).unwrap();
        assert_eq!(actions, [remove("replanned")]);
        assert!(planned.is_none(), "never used on a later attempt");
        // Same head: the plan step's actions, without planning.
        let mut planned = Some(vec![remove("planned")]);
        let actions = actions_on(&at("old"), "old", &mut planned, |_| {
            panic!("planned again on the head already planned on")
        })
        .unwrap();
        assert_eq!(actions, [remove("planned")]);
        // A second attempt (the push lost a race) plans again, even on that commit.
        let actions = actions_on(&at("old"), "old", &mut planned, replanned).unwrap();
        assert_eq!(actions, [remove("replanned")]);
    }
}
