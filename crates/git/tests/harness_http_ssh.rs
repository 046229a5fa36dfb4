//! Smoke tests of the HTTP and SSH server harnesses with the git CLI.
use gitcontroller_testkit::git_server::{GitHttpServer, GitSshServer, git_command};

fn clone_commit_push(url: &str, envs: &[(&str, String)]) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("c");
    let mut c = git_command();
    c.args(["clone", "--quiet", url]).arg(&clone);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    if !out.status.success() {
        return out;
    }
    std::fs::write(clone.join("pushed.yaml"), "a: 1\n").unwrap();
    assert!(
        git_command()
            .arg("-C")
            .arg(&clone)
            .args(["add", "."])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        git_command()
            .arg("-C")
            .arg(&clone)
            .args(["commit", "-qm", "cli push"])
            .status()
            .unwrap()
            .success()
    );
    let mut p = git_command();
    p.arg("-C")
        .arg(&clone)
        .args(["push", "-q", "origin", "HEAD:main"]);
    for (k, v) in envs {
        p.env(k, v);
    }
    p.output().unwrap()
}

#[test]
fn http_basic_auth_with_cli() {
    let s = GitHttpServer::with_basic_auth("alice", "s3cret");
    s.seed(&[("x.yaml", "x: 1\n")], "seed");
    let url = s.url().replace("http://", "http://alice:s3cret@");
    let out = clone_commit_push(&url, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.read_file("pushed.yaml").as_deref(), Some("a: 1\n"));
    let bad = s.url().replace("http://", "http://alice:wrong@");
    let out = clone_commit_push(&bad, &[]);
    assert!(!out.status.success());
    assert!(s.requests().iter().any(|r| r.status == 401));
}

#[test]
fn ssh_with_cli() {
    let s = GitSshServer::start();
    s.seed(&[("x.yaml", "x: 1\n")], "seed");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, &s.client_key().private_key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, s.known_hosts()).unwrap();
    let ssh = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
        key.display(),
        kh.display()
    );
    let out = clone_commit_push(&s.url(), &[("GIT_SSH_COMMAND", ssh)]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert_eq!(s.read_file("pushed.yaml").as_deref(), Some("a: 1\n"));
    assert!(s.known_hosts_hashed().starts_with("|1|"));
}
