//! Fetches shared between the repositories of one remote: a [`Repository::fetch`] that waited
//! for the store's lock while another repository fetched the same branch, with the same URL,
//! credentials and branch creation, takes that fetch's answer instead of asking the remote
//! again — when that fetch began after this one was asked for. Fetches of one store run one at
//! a time (the store's lock), so such a fetch has finished by the time the lock is free, and
//! its head is the remote's head at a moment after the request: as fresh an answer as a fetch
//! of its own. A hundred repositories reading directories of one remote at start-up make a
//! few fetches, not a hundred.
//!
//! Only successful fetches are shared; a failed one is made again by each caller, which then
//! gets its own error. The credentials are part of the key (as a digest): a repository never
//! reads a branch through a fetch that another repository's credentials made.
//!
//! [`Repository::fetch`]: crate::Repository::fetch

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::credentials::{Auth, Credentials};

/// Fetches older than this are forgotten (no request waits for a store's lock that long:
/// the controller gives up on a Git step after 5 minutes).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What makes two fetches the same fetch: the store, the URL as written (user-info
/// included), the branch, whether a missing branch is an error, and the credentials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FetchKey {
    store: PathBuf,
    url: String,
    branch: String,
    create_branch: bool,
    credentials: [u8; 32],
}

impl FetchKey {
    /// The key of a fetch of `branch` of `url` into `store` with `credentials`.
    pub(crate) fn new(
        store: &Path,
        url: &str,
        branch: &str,
        create_branch: bool,
        credentials: &Credentials,
    ) -> Self {
        Self {
            store: store.to_path_buf(),
            url: url.to_string(),
            branch: branch.to_string(),
            create_branch,
            credentials: digest(credentials),
        }
    }
}

/// A SHA-256 of every field of `credentials`, each tagged and length-prefixed so that no two
/// different credentials have the same input.
fn digest(credentials: &Credentials) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut field = |tag: u8, value: &[u8]| {
        context.update(&[tag]);
        context.update(&(value.len() as u64).to_be_bytes());
        context.update(value);
    };
    match &credentials.auth {
        Auth::None => field(0, b""),
        Auth::Ssh {
            identity,
            passphrase,
            known_hosts,
        } => {
            field(1, identity.as_bytes());
            match passphrase {
                Some(passphrase) => field(2, passphrase.as_bytes()),
                None => field(3, b""),
            }
            field(4, known_hosts.as_bytes());
        }
        Auth::Basic { username, password } => {
            field(5, username.as_bytes());
            field(6, password.as_bytes());
        }
        Auth::Bearer { token } => field(7, token.as_bytes()),
    }
    match &credentials.ca_cert {
        Some(ca) => field(8, ca),
        None => field(9, b""),
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// The last successful fetch of a key: when it began and the head it found.
#[derive(Clone, Debug)]
struct Recent {
    began: Instant,
    head: Option<String>,
}

/// The last successful fetch of every key, in this process.
static RECENT: Mutex<Option<HashMap<FetchKey, Recent>>> = Mutex::new(None);

/// The head found by a successful fetch of `key` that began at or after `requested`, if any.
pub(crate) fn fetched_since(key: &FetchKey, requested: Instant) -> Option<Option<String>> {
    let recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    recent
        .as_ref()?
        .get(key)
        .filter(|fetch| fetch.began >= requested)
        .map(|fetch| fetch.head.clone())
}

/// Records a successful fetch of `key` that began at `began` and found `head`.
pub(crate) fn record(key: FetchKey, began: Instant, head: Option<String>) {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    let map = recent.get_or_insert_with(HashMap::new);
    map.retain(|_, fetch| began.saturating_duration_since(fetch.began) < FORGET_AFTER);
    map.insert(key, Recent { began, head });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(store: &str, credentials: &Credentials) -> FetchKey {
        FetchKey::new(
            Path::new(store),
            "git://example.invalid/r.git",
            "main",
            false,
            credentials,
        )
    }

    #[test]
    fn a_fetch_is_shared_only_with_requests_made_before_it_began() {
        let key = key("/shared-fetch/a", &Credentials::none());
        let asked_before = Instant::now();
        let began = Instant::now();
        record(key.clone(), began, Some("abc".into()));
        assert_eq!(fetched_since(&key, asked_before), Some(Some("abc".into())));
        assert_eq!(fetched_since(&key, began), Some(Some("abc".into())));
        let asked_after = Instant::now() + Duration::from_millis(1);
        assert_eq!(fetched_since(&key, asked_after), None);
    }

    #[test]
    fn other_credentials_or_settings_never_share_a_fetch() {
        let alice = Credentials {
            auth: Auth::Basic {
                username: "alice".into(),
                password: "one".into(),
            },
            ca_cert: None,
        };
        let other_password = Credentials {
            auth: Auth::Basic {
                username: "alice".into(),
                password: "two".into(),
            },
            ca_cert: None,
        };
        let asked = Instant::now();
        record(key("/shared-fetch/b", &alice), Instant::now(), None);
        assert!(fetched_since(&key("/shared-fetch/b", &alice), asked).is_some());
        assert!(fetched_since(&key("/shared-fetch/b", &other_password), asked).is_none());
        assert!(fetched_since(&key("/shared-fetch/b", &Credentials::none()), asked).is_none());
        let creating = FetchKey::new(
            Path::new("/shared-fetch/b"),
            "git://example.invalid/r.git",
            "main",
            true,
            &alice,
        );
        assert!(fetched_since(&creating, asked).is_none());
        // Fields do not run into each other.
        let split = |username: &str, password: &str| {
            digest(&Credentials {
                auth: Auth::Basic {
                    username: username.into(),
                    password: password.into(),
                },
                ca_cert: None,
            })
        };
        assert_ne!(split("ab", "c"), split("a", "bc"));
    }
}
