//! The prune guard: how much one sync may delete. A wrong `path`, a deleted branch or a
//! half-read source looks, to a planner, exactly like "every manifest was removed"; the
//! guard refuses such a sync instead of pruning the cluster empty (Argo CD's `allowEmpty`
//! is the anchor).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, HoldCause};
use crate::hold;
use crate::{ClusterAction, Plan};

/// The most objects one sync may delete (`spec.pruneLimit`): a count, or a percentage of
/// the inventory (rounded up, like Kubernetes' `maxSurge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PruneLimit {
    /// At most this many objects.
    Count(u32),
    /// At most this percentage (0 to 100) of the objects in the inventory, rounded up.
    Percent(u32),
}

impl Default for PruneLimit {
    /// Half of the inventory.
    fn default() -> Self {
        PruneLimit::Percent(50)
    }
}

/// Why a `pruneLimit` does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pruneLimit {text:?} is neither a count (10) nor a percentage from 0% to 100% (50%)")]
pub struct PruneLimitError {
    /// The text as written.
    pub text: String,
}

impl PruneLimit {
    /// `"10"` (a count) or `"50%"` (a percentage, at most `100%`).
    pub fn parse(text: &str) -> Result<Self, PruneLimitError> {
        let error = || PruneLimitError {
            text: text.to_owned(),
        };
        let digits = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            s.parse::<u32>().map_err(|_| error())
        };
        match text.strip_suffix('%') {
            Some(percent) => match digits(percent)? {
                p @ 0..=100 => Ok(PruneLimit::Percent(p)),
                _ => Err(error()),
            },
            None => Ok(PruneLimit::Count(digits(text)?)),
        }
    }

    /// How many of `inventory` objects one sync may delete.
    pub fn allowed(self, inventory: usize) -> usize {
        match self {
            PruneLimit::Count(n) => n as usize,
            PruneLimit::Percent(p) => (inventory * p as usize).div_ceil(100),
        }
    }
}

impl fmt::Display for PruneLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneLimit::Count(n) => write!(f, "{n}"),
            PruneLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What the source looks like, as far as pruning everything is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceShape {
    /// The source holds at least one manifest.
    HasManifests,
    /// The source holds no manifest, and that was meant: `spec.path` exists in a commit
    /// newer than the last one synced, and holds no manifest there (the user emptied it).
    Emptied,
    /// The source holds no manifest and nothing says that was meant: the path does not exist
    /// (an empty remote), or the commit is the one synced before.
    EmptyUnconfirmed,
}

impl SourceShape {
    /// The shape of a source with `manifests` manifests (after parsing), whose `spec.path`
    /// exists or not at its commit, which is or is not newer than the last one synced.
    pub fn of(manifests: usize, path_exists: bool, newer_than_last_sync: bool) -> Self {
        if manifests > 0 {
            SourceShape::HasManifests
        } else if path_exists && newer_than_last_sync {
            SourceShape::Emptied
        } else {
            SourceShape::EmptyUnconfirmed
        }
    }
}

/// Everything the guard looks at besides the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneGuard {
    /// `spec.pruneLimit`.
    pub limit: PruneLimit,
    /// How many objects the repository applied before this sync (its inventory).
    pub inventory: usize,
    /// Whether the source holds manifests, and if not, whether that was meant.
    pub source: SourceShape,
}

/// Why a sync's deletes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PruneRefusal {
    /// More deletes than `pruneLimit` allows.
    OverLimit {
        /// Deletes the plan held.
        deleting: usize,
        /// Objects in the inventory.
        inventory: usize,
        /// Deletes allowed.
        allowed: usize,
        /// The limit as set.
        limit: PruneLimit,
    },
    /// Objects would be deleted because the source holds no manifest at all, and nothing
    /// says it was emptied on purpose ([`SourceShape::EmptyUnconfirmed`]).
    EmptySource {
        /// Deletes the plan held.
        deleting: usize,
        /// Objects in the inventory.
        inventory: usize,
    },
}

impl fmt::Display for PruneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneRefusal::OverLimit {
                deleting,
                inventory,
                allowed,
                limit,
            } => write!(
                f,
                "would delete {deleting} of {inventory} objects, limit {allowed} (pruneLimit {limit}); nothing is deleted until the manifests are back or pruneLimit is raised"
            ),
            PruneRefusal::EmptySource {
                deleting,
                inventory,
            } => write!(
                f,
                "would delete {deleting} of {inventory} objects because Git holds no manifest, but the path was not emptied in a commit newer than the last one synced; nothing is deleted (to delete everything, empty the path in a new commit)"
            ),
        }
    }
}

/// Refuses the deletes of `plan` when there are more than the limit allows, or when the
/// source holds no manifest at all without that being meant ([`SourceShape`]: the
/// inventory is never pruned empty because Git looked empty). A refused sync deletes nothing at all: every delete is taken out
/// of `to_cluster` and reported as a [`HeldBack(PruneLimit)`](HoldCause::PruneLimit)
/// diagnostic; everything else in the plan stays. Returns why, or `None` when the deletes
/// may go ahead (the plan is then unchanged).
pub fn guard_prune(plan: &mut Plan, guard: &PruneGuard) -> Option<PruneRefusal> {
    let deleting = plan
        .to_cluster
        .iter()
        .filter(|a| matches!(a, ClusterAction::Delete { .. }))
        .count();
    if deleting == 0 {
        return None;
    }
    let allowed = guard.limit.allowed(guard.inventory);
    let refusal = if deleting > allowed {
        PruneRefusal::OverLimit {
            deleting,
            inventory: guard.inventory,
            allowed,
            limit: guard.limit,
        }
    } else if guard.source == SourceShape::EmptyUnconfirmed {
        PruneRefusal::EmptySource {
            deleting,
            inventory: guard.inventory,
        }
    } else {
        return None;
    };
    let why = format!("this sync {refusal}");
    let (deletes, kept): (Vec<ClusterAction>, Vec<ClusterAction>) =
        std::mem::take(&mut plan.to_cluster)
            .into_iter()
            .partition(|a| matches!(a, ClusterAction::Delete { .. }));
    plan.to_cluster = kept;
    plan.diagnostics.extend(
        deletes
            .iter()
            .map(|d| hold::cluster_action(d, HoldCause::PruneLimit, &why, None)),
    );
    plan.diagnostics.sort_by(Diagnostic::stable_cmp);
    Some(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_counts_or_percentages() {
        assert_eq!(PruneLimit::parse("10"), Ok(PruneLimit::Count(10)));
        assert_eq!(PruneLimit::parse("0"), Ok(PruneLimit::Count(0)));
        assert_eq!(PruneLimit::parse("50%"), Ok(PruneLimit::Percent(50)));
        assert_eq!(PruneLimit::parse("100%"), Ok(PruneLimit::Percent(100)));
        for bad in ["", "%", "101%", "-1", "1.5", "ten", " 5", "5 %", "50%%"] {
            assert!(PruneLimit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(PruneLimit::Percent(50).to_string(), "50%");
        assert_eq!(PruneLimit::parse("7").unwrap().to_string(), "7");
    }

    #[test]
    fn percentages_round_up() {
        let half = PruneLimit::default();
        assert_eq!(half.allowed(20), 10);
        assert_eq!(half.allowed(3), 2);
        assert_eq!(half.allowed(1), 1);
        assert_eq!(half.allowed(0), 0);
        assert_eq!(PruneLimit::Percent(0).allowed(100), 0);
        assert_eq!(PruneLimit::Percent(100).allowed(7), 7);
        assert_eq!(PruneLimit::Count(3).allowed(1), 3);
    }

    #[test]
    fn only_an_existing_path_emptied_in_a_new_commit_is_empty_on_purpose() {
        use SourceShape::*;
        assert_eq!(SourceShape::of(3, false, false), HasManifests);
        assert_eq!(SourceShape::of(0, true, true), Emptied);
        assert_eq!(SourceShape::of(0, true, false), EmptyUnconfirmed);
        assert_eq!(SourceShape::of(0, false, true), EmptyUnconfirmed);
    }

    #[test]
    fn refusals_name_the_count() {
        let refusal = PruneRefusal::OverLimit {
            deleting: 12,
            inventory: 20,
            allowed: 10,
            limit: PruneLimit::default(),
        };
        assert!(
            refusal
                .to_string()
                .starts_with("would delete 12 of 20 objects, limit 10 (pruneLimit 50%)"),
            "{refusal}"
        );
    }
}
