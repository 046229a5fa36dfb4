//! Steps 2 and 4: the watchers a repository needs, started before the fetch so that a new
//! watcher's initial list runs while Git is read; then the live objects of the selected
//! types that the repository's identity may read, from those watchers, keyed by (reader,
//! type, scope) (`access::scope`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::context::Context;
use super::super::live_state::LiveStateBuilder;
use super::super::state::{Flow, SyncState, needs};
use crate::access::scope::{ReadCheck, Selection, WatchScope, watch_keys};
use crate::error::{Error, Result};
use gitcontroller_sync::LiveInput;

/// How long a new watcher may take for its initial list.
const INITIAL_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Fills `state.watched`: the watchers of every type the usable rules select, in the
/// namespaces they select, as the repository's identity reads them. The repository states the
/// watchers it needs (shared with every repository that needs the same ones); those it no
/// longer needs are released. A new watcher lists its objects in the background: the steps in
/// between (the fetch) run meanwhile, and [`observe_live`] waits for the list.
pub async fn watch_live(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let rules = needs(&state.rules, "resolve-rules")?;
    let lockdown = ctx.config.tenancy.lockdown();
    let mut wanted = BTreeMap::new();
    for (key, entry) in &rules.types {
        let selection = rules
            .selections
            .get(key)
            .cloned()
            .unwrap_or(Selection::Everywhere);
        let keys = watch_keys(
            &state.identity,
            lockdown,
            &state.key.namespace,
            key,
            entry,
            &selection,
            &ctx.reviews,
        )
        .await?;
        wanted.extend(keys.into_iter().map(|k| (k, entry.clone())));
    }
    let watched = ctx.watchers.need(&state.key, wanted);
    ctx.metrics.set_watched_resources(ctx.watchers.len() as i64);
    state.watched = Some(watched);
    Ok(Flow::Continue)
}

/// Fills `state.live`: every object the watchers of [`watch_live`] hold that the repository's
/// identity may read, once each watcher has its initial list.
pub async fn observe_live(ctx: &Context, state: &mut SyncState) -> Result<Flow> {
    let watched = needs(&state.watched, "watch-live")?;
    let mut reads = ReadCheck::new(state.identity.clone(), ctx.reviews.clone());
    let mut live = LiveStateBuilder::default();
    for source in watched {
        let entry = &source.entry;
        if !matches!(
            tokio::time::timeout(INITIAL_LIST_TIMEOUT, source.wait_listed()).await,
            Ok(true)
        ) {
            return Err(Error::Internal(format!(
                "the watch of {} ({}) did not finish its initial list within {INITIAL_LIST_TIMEOUT:?}",
                entry.resource.plural, source.served_by
            )));
        }
        let listed = source.objects();
        live.start_run(entry, listed.len());
        // Whether the identity may read is decided per namespace (`ReadCheck`). Objects of a
        // cluster-scoped type, or watched in one namespace, share theirs: asked once, and no
        // object is read for it.
        let shared_namespace = match (&source.requested.scope, entry.namespaced) {
            (_, false) => Some(None),
            (WatchScope::Namespace(namespace), true) => Some(Some(namespace.as_str())),
            (WatchScope::Cluster, true) => None,
        };
        if let Some(namespace) = shared_namespace {
            if reads.check_in(entry, namespace).await?.is_ok() {
                for object in listed {
                    live.push(object);
                }
            }
            continue;
        }
        // Otherwise per object: a store's objects come namespace by namespace, mostly, so the
        // last answer is kept at hand.
        let mut last: Option<(Option<String>, bool)> = None;
        for object in listed {
            let namespace = object.identity().namespace.filter(|_| entry.namespaced);
            let readable = match &last {
                Some((checked, readable)) if checked.as_deref() == namespace => *readable,
                _ => {
                    let readable = reads.check_in(entry, namespace).await?.is_ok();
                    last = Some((namespace.map(str::to_owned), readable));
                    readable
                }
            };
            // Out of reach: not planned, not exported, never named.
            if readable {
                // Shared, not copied: the stores hold each object once, compacted and with
                // the bookkeeping annotations aside.
                live.push(object);
            }
        }
    }
    state.reads = Some(reads);
    // The index of the last sync's objects still finds these when each is where it was.
    let live = live.build_after(state.repository.last_live().as_ref());
    state.repository.remember_live(live.clone());
    state.live = Some(live);
    Ok(Flow::Continue)
}
