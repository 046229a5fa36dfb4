//! Fetch and push over every transport against real servers: git daemon (`git://`), git
//! http-backend behind HTTP basic / bearer auth, and OpenSSH sshd with key auth and
//! known_hosts. Each with a success case and failure cases that yield the right category.

mod common;

use common::*;
use gitcontroller_git::{Credentials, Error, RepoSpec, Repository};
use gitcontroller_testkit::git_server::{GitDaemon, GitHttpServer, GitSshServer, HttpAuth};
use serde_json::json;

/// Fetch, snapshot, commit and push one new file; check it landed.
fn round_trip(repo: &mut Repository, check: impl Fn(&str) -> Option<String>) {
    let fetched = repo.fetch().unwrap();
    let head = fetched.head.clone().expect("seeded branch");
    let snap = repo.snapshot(&head).unwrap();
    assert_eq!(snap.files.len(), 1);
    assert_eq!(snap.files[0].path.as_ref(), "seed.yaml");
    let out = repo
        .commit_and_push(&author(), None, &mut |_snap| {
            Ok::<_, Error>(vec![put_new(
                "new.yaml",
                configmap("new", json!({"k": "v"})),
            )])
        })
        .unwrap();
    assert!(out.commit.is_some());
    assert_eq!(out.retries, 0);
    assert!(check("new.yaml").unwrap().contains("name: new"));
}

#[test]
fn git_daemon_success_and_failures() {
    let mut d = GitDaemon::start();
    d.seed(&[("seed.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    round_trip(&mut repo, |p| d.read_file(p));

    // Wrong repository path: not-found.
    let c2 = cache();
    let bad_url = d.url().replace("repo.git", "nope.git");
    let err = open(&bad_url, &c2).fetch().unwrap_err();
    assert_eq!(err.category(), "not-found", "{err}");

    // Missing branch on a remote that has others: BranchNotFound.
    let c3 = cache();
    let mut other = Repository::open(RepoSpec::new(d.url(), "does-not-exist", c3.path())).unwrap();
    let err = other.fetch().unwrap_err();
    assert_eq!(err.category(), "branch-not-found", "{err}");

    // Server down: network.
    d.stop();
    let err = repo.fetch().unwrap_err();
    assert_eq!(err.category(), "network", "{err}");
}

#[test]
fn http_basic_auth_success_and_wrong_password() {
    let s = GitHttpServer::with_basic_auth("alice", "correct-horse");
    s.seed(&[("seed.yaml", "a: 1\n")], "seed");
    let c = cache();
    let spec = RepoSpec::new(s.url(), "main", c.path())
        .with_credentials(Credentials::basic("alice", "correct-horse"))
        .with_retry(fast_retry());
    let mut repo = Repository::open(spec).unwrap();
    round_trip(&mut repo, |p| s.read_file(p));

    let c2 = cache();
    let spec = RepoSpec::new(s.url(), "main", c2.path())
        .with_credentials(Credentials::basic("alice", "wrong-password-xyz"));
    let err = Repository::open(spec).unwrap().fetch().unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(matches!(err, Error::Auth(_)));
    assert!(!err.to_string().contains("wrong-password-xyz"), "{err}");

    // No credentials at all: auth too.
    let c3 = cache();
    let err = Repository::open(RepoSpec::new(s.url(), "main", c3.path()))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");

    // Password in the URL never shows up in errors either.
    let c4 = cache();
    let url = s
        .url()
        .replace("http://", "http://alice:url-secret-123@")
        .replace("repo.git", "nope.git");
    let err = Repository::open(RepoSpec::new(url, "main", c4.path()))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert!(!err.to_string().contains("url-secret-123"), "{err}");
}

#[test]
fn http_bearer_token() {
    let s = GitHttpServer::with_bearer_token("tok-abc-123");
    s.seed(&[("seed.yaml", "a: 1\n")], "seed");
    let c = cache();
    let spec = RepoSpec::new(s.url(), "main", c.path())
        .with_credentials(Credentials::bearer("tok-abc-123"))
        .with_retry(fast_retry());
    let mut repo = Repository::open(spec).unwrap();
    round_trip(&mut repo, |p| s.read_file(p));

    let c2 = cache();
    let spec = RepoSpec::new(s.url(), "main", c2.path())
        .with_credentials(Credentials::bearer("tok-wrong-999"));
    let err = Repository::open(spec).unwrap().fetch().unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(!err.to_string().contains("tok-wrong-999"), "{err}");
}

fn ssh_spec(
    s: &GitSshServer,
    cache: &tempfile::TempDir,
    identity: &str,
    passphrase: Option<&str>,
    known_hosts: &str,
) -> RepoSpec {
    RepoSpec::new(s.url(), "main", cache.path())
        .with_credentials(Credentials::ssh(
            identity,
            passphrase.map(str::to_string),
            known_hosts,
        ))
        .with_retry(fast_retry())
}

#[test]
fn ssh_key_auth_and_known_hosts() {
    let s = GitSshServer::start();
    s.seed(&[("seed.yaml", "a: 1\n")], "seed");

    // Success: authorized key, matching known_hosts.
    let c = cache();
    let mut repo = Repository::open(ssh_spec(
        &s,
        &c,
        &s.client_key().private_key,
        None,
        &s.known_hosts(),
    ))
    .unwrap();
    round_trip(&mut repo, |p| s.read_file(p));

    // Hashed known_hosts (ssh-keygen -H) works too.
    let c = cache();
    let mut repo = Repository::open(ssh_spec(
        &s,
        &c,
        &s.client_key().private_key,
        None,
        &s.known_hosts_hashed(),
    ))
    .unwrap();
    assert!(repo.fetch().unwrap().head.is_some(), "{}", s.log());

    // Wrong key (not authorized): auth.
    let stranger = s.generate_key("stranger", "ed25519", "");
    let c = cache();
    let err = Repository::open(ssh_spec(
        &s,
        &c,
        &stranger.private_key,
        None,
        &s.known_hosts(),
    ))
    .unwrap()
    .fetch()
    .unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(matches!(err, Error::Auth(_)), "{err:?}");

    // Unknown host key: another key for the same host in known_hosts → rejected.
    let impostor = s.generate_key("impostor_host", "ed25519", "");
    let fake_kh = format!(
        "[127.0.0.1]:{} {}\n",
        s.port(),
        impostor
            .public_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let c = cache();
    let err = Repository::open(ssh_spec(
        &s,
        &c,
        &s.client_key().private_key,
        None,
        &fake_kh,
    ))
    .unwrap()
    .fetch()
    .unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(matches!(err, Error::HostKey(_)), "{err:?}");
    assert!(err.to_string().contains("does not match"), "{err}");

    // Host not in known_hosts at all (entry for another port).
    let other_port = s.known_hosts().replace(&format!(":{}", s.port()), ":1");
    let c = cache();
    let err = Repository::open(ssh_spec(
        &s,
        &c,
        &s.client_key().private_key,
        None,
        &other_port,
    ))
    .unwrap()
    .fetch()
    .unwrap_err();
    assert!(matches!(err, Error::HostKey(_)), "{err:?}");
    assert!(err.to_string().contains("not in known_hosts"), "{err}");

    // Passphrase-protected key.
    let locked = s.generate_key("locked", "ed25519", "pass-phrase-42");
    s.authorize(&locked.public_key);
    let c = cache();
    let mut repo = Repository::open(ssh_spec(
        &s,
        &c,
        &locked.private_key,
        Some("pass-phrase-42"),
        &s.known_hosts(),
    ))
    .unwrap();
    assert!(repo.fetch().unwrap().head.is_some(), "{}", s.log());
    let c = cache();
    let err = Repository::open(ssh_spec(
        &s,
        &c,
        &locked.private_key,
        Some("wrong-phrase-77"),
        &s.known_hosts(),
    ))
    .unwrap()
    .fetch()
    .unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(!err.to_string().contains("wrong-phrase-77"), "{err}");

    // ECDSA keys in OpenSSH format.
    let ecdsa = s.generate_key("ecdsa", "ecdsa", "");
    s.authorize(&ecdsa.public_key);
    let c = cache();
    let mut repo =
        Repository::open(ssh_spec(&s, &c, &ecdsa.private_key, None, &s.known_hosts())).unwrap();
    assert!(repo.fetch().unwrap().head.is_some(), "{}", s.log());

    // RSA keys in PEM format.
    let rsa = s.generate_key("rsa", "rsa", "");
    s.authorize(&rsa.public_key);
    let c = cache();
    let mut repo =
        Repository::open(ssh_spec(&s, &c, &rsa.private_key, None, &s.known_hosts())).unwrap();
    assert!(repo.fetch().unwrap().head.is_some(), "{}", s.log());
}

#[test]
fn ssh_requires_known_hosts_and_identity() {
    let c = cache();
    let err = Repository::open(RepoSpec::new(
        "ssh://git@127.0.0.1:1/x.git",
        "main",
        c.path(),
    ))
    .unwrap_err();
    assert_eq!(err.category(), "auth");
    let err = Repository::open(
        RepoSpec::new("ssh://git@127.0.0.1:1/x.git", "main", c.path())
            .with_credentials(Credentials::ssh("key", None, "# nothing\n")),
    )
    .unwrap_err();
    assert_eq!(err.category(), "auth");
    let err = Repository::open(
        RepoSpec::new("http://127.0.0.1:1/x.git", "main", c.path())
            .with_credentials(Credentials::ssh("key", None, "h ssh-ed25519 AAAA")),
    )
    .unwrap_err();
    assert_eq!(err.category(), "auth");
}

#[test]
fn https_with_private_ca() {
    let s = GitHttpServer::start_tls(HttpAuth::Basic {
        username: "bob".into(),
        password: "tls-pass".into(),
    });
    s.seed(&[("seed.yaml", "a: 1\n")], "seed");
    let ca = s.ca_cert_pem().unwrap().to_vec();

    // Trusted through ca.crt.
    let c = cache();
    let spec = RepoSpec::new(s.url(), "main", c.path())
        .with_credentials(Credentials::basic("bob", "tls-pass").with_ca_cert(ca.clone()))
        .with_retry(fast_retry());
    let mut repo = Repository::open(spec).unwrap();
    round_trip(&mut repo, |p| s.read_file(p));

    // Without ca.crt the private CA is not trusted: auth (certificate) error.
    let c = cache();
    let spec = RepoSpec::new(s.url(), "main", c.path())
        .with_credentials(Credentials::basic("bob", "tls-pass"));
    let err = Repository::open(spec).unwrap().fetch().unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Another CA: rejected by our verification.
    let other = GitHttpServer::start_tls(HttpAuth::None);
    let c = cache();
    let spec = RepoSpec::new(s.url(), "main", c.path()).with_credentials(
        Credentials::basic("bob", "tls-pass").with_ca_cert(other.ca_cert_pem().unwrap().to_vec()),
    );
    let err = Repository::open(spec).unwrap().fetch().unwrap_err();
    assert_eq!(err.category(), "auth", "{err}");
    assert!(err.to_string().contains("not trusted by ca.crt"), "{err}");
}
