//! Kubernetes clients per identity: the controller's own, or one impersonating a
//! ServiceAccount, made once and shared.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;

use super::identity::{Identity, ServiceAccountRef};
use super::scope::Reader;

/// The controller's client and its impersonating clients, one per ServiceAccount.
pub struct Clients {
    config: kube::Config,
    controller: Client,
    accounts: Mutex<HashMap<ServiceAccountRef, Client>>,
}

impl Clients {
    /// Clients derived from the controller's configuration; `controller` is the client made
    /// from it as is.
    pub fn new(config: kube::Config, controller: Client) -> Self {
        Self {
            config,
            controller,
            accounts: Mutex::default(),
        }
    }

    /// The controller's own client.
    pub fn controller(&self) -> &Client {
        &self.controller
    }

    /// The client that reads and writes for `identity`: the controller's own for
    /// [`Identity::ClusterScope`] and [`Identity::Namespace`] (the policy confines the
    /// latter), an impersonating one for [`Identity::ServiceAccount`].
    pub fn for_identity(&self, identity: &Identity) -> Result<Client, kube::Error> {
        match identity {
            Identity::ClusterScope | Identity::Namespace(_) => Ok(self.controller.clone()),
            Identity::ServiceAccount(account) => self.for_account(account),
        }
    }

    /// The client a watcher reads with.
    pub fn for_reader(&self, reader: &Reader) -> Result<Client, kube::Error> {
        match reader {
            Reader::Controller => Ok(self.controller.clone()),
            Reader::Account(account) => self.for_account(account),
        }
    }

    /// A client that impersonates `account`. Only the user name is sent: the API server adds
    /// the ServiceAccount's groups itself, so the controller needs `impersonate` on
    /// `serviceaccounts` only, never on `groups`. A kubeconfig that impersonates already
    /// (`as:`) is replaced: Kubernetes has no nested impersonation.
    pub fn for_account(&self, account: &ServiceAccountRef) -> Result<Client, kube::Error> {
        let mut accounts = self.accounts.lock().expect("clients lock");
        if let Some(client) = accounts.get(account) {
            return Ok(client.clone());
        }
        let client = Client::try_from(impersonating(&self.config, account))?;
        accounts.insert(account.clone(), client.clone());
        Ok(client)
    }

    /// Forgets the clients of accounts no longer used (their connection pools close).
    pub fn retain_accounts(&self, keep: impl Fn(&ServiceAccountRef) -> bool) {
        self.accounts
            .lock()
            .expect("clients lock")
            .retain(|account, _| keep(account));
    }
}

/// `config` acting as `account`.
fn impersonating(config: &kube::Config, account: &ServiceAccountRef) -> kube::Config {
    let mut config = config.clone();
    config.auth_info.impersonate = Some(account.username());
    config.auth_info.impersonate_groups = None;
    config.auth_info.impersonate_uid = None;
    config.auth_info.impersonate_user_extra = None;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_sends_the_account_and_no_groups() {
        let mut base = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        base.auth_info.impersonate = Some("someone-else".into());
        base.auth_info.impersonate_groups = Some(vec!["system:masters".into()]);
        let config = impersonating(
            &base,
            &ServiceAccountRef {
                namespace: "team-a".into(),
                name: "deployer".into(),
            },
        );
        assert_eq!(
            config.auth_info.impersonate.as_deref(),
            Some("system:serviceaccount:team-a:deployer")
        );
        assert_eq!(config.auth_info.impersonate_groups, None);
        assert_eq!(config.cluster_url, base.cluster_url);
    }
}
