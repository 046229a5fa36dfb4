//! Blocking Git work of the steps: under the repository's Git lock, within a timeout, in the
//! reconcile's tracing span.

use std::time::Duration;

use gitcontroller_git::{Credentials, RepoSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::super::context::Context;
use super::super::convert;
use super::super::repository::RepositoryState;
use super::super::state::SyncState;
use crate::api::GitRepository;
use crate::error::{Error, Result};

/// How long one Git step (fetch, or commit and push with its retries) may take. libgit2 has
/// no per-operation timeout without unsafe code; past this the reconcile gives up while the
/// blocking thread keeps the repository's lock until it returns, so nothing else touches that
/// cache meanwhile.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `work` on a blocking thread, in the current tracing span (so the Git layer's logs
/// name the repository).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

/// Runs Git `work` for one repository: under its Git lock (held by the blocking thread until
/// `work` returns), in the current span, giving up after [`GIT_TIMEOUT`].
pub(super) async fn with_git<T: Send + 'static>(
    repository: &RepositoryState,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let lock = repository.git_lock()?;
    let locked = move || {
        let _held = lock;
        work()
    };
    match tokio::time::timeout(GIT_TIMEOUT, blocking(locked)).await {
        Ok(result) => result,
        Err(_) => Err(Error::GitTimeout(GIT_TIMEOUT)),
    }
}

/// The credentials a repository's `secretRef` names.
pub(crate) async fn credentials(
    repo: &GitRepository,
    client: &kube::Client,
) -> Result<Credentials> {
    let Some(reference) = &repo.spec.secret_ref else {
        return Ok(Credentials::none());
    };
    let namespace = repo.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
        Error::Credentials(format!(
            "Secret {namespace}/{} does not exist",
            reference.name
        ))
    })?;
    Credentials::from_secret_data(&convert::secret_data(&secret))
        .map_err(|e| Error::Credentials(format!("Secret {namespace}/{}: {e}", reference.name)))
}

/// `file://` URLs read the controller's own file system: only with `--allow-local-urls`.
fn refuse_local_url(url: &str, allowed: bool) -> Result<()> {
    let local = url
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file://"));
    if local && !allowed {
        return Err(Error::InvalidSpec(
            "file:// URLs read the controller's own disk and are refused: the controller runs \
             without --allow-local-urls"
                .into(),
        ));
    }
    Ok(())
}

/// Where and how to reach a repository: its URL, branch and path, the cache directory
/// (`cache_root`: one object store per remote, shared by every repository reading it, each
/// operation under the store's lock), whether it may create its branch and read local URLs,
/// and its credentials (read now, with `client`: the controller's own identity, as the Secret
/// is the repository's, not a synced object).
async fn repo_spec(
    repo: &GitRepository,
    client: &kube::Client,
    cache_root: &std::path::Path,
    allow_local_urls: bool,
) -> Result<RepoSpec> {
    refuse_local_url(&repo.spec.url, allow_local_urls)?;
    let credentials = credentials(repo, client).await?;
    let mut spec = RepoSpec::new(&repo.spec.url, &repo.spec.branch, cache_root)
        .with_path(&repo.spec.path)
        .with_credentials(credentials);
    spec.create_branch = repo.spec.create_branch;
    spec.allow_local = allow_local_urls;
    Ok(spec)
}

/// [`repo_spec`] of the repository a sync is for, with the controller's cache and flags.
pub(super) async fn sync_repo_spec(ctx: &Context, state: &SyncState) -> Result<RepoSpec> {
    repo_spec(
        &state.repo,
        &ctx.client,
        &ctx.config.cache_dir,
        ctx.config.tenancy.allow_local_urls,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_need_the_admins_flag() {
        assert!(refuse_local_url("file:///srv/git/repo.git", false).is_err());
        assert!(refuse_local_url("FILE:///srv/git/repo.git", false).is_err());
        assert!(refuse_local_url("file:///srv/git/repo.git", true).is_ok());
        assert!(refuse_local_url("https://example.com/repo.git", false).is_ok());
        assert!(refuse_local_url("git@example.com:repo.git", false).is_ok());
    }
}
