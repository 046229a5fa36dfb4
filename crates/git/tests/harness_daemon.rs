//! Smoke test of the loopback git daemon harness.
use gitcontroller_testkit::git_server::{GitDaemon, git_command};

#[test]
fn daemon_serves_clone_and_push() {
    let mut d = GitDaemon::start();
    assert!(d.try_head().is_none());
    assert!(d.list_files().is_empty());
    let c1 = d.seed(&[("a/b.yaml", "x: 1\n"), ("c.txt", "hi\n")], "first");
    assert_eq!(d.head(), c1);
    assert_eq!(d.read_file("a/b.yaml").as_deref(), Some("x: 1\n"));
    assert_eq!(
        d.list_files(),
        vec!["a/b.yaml".to_string(), "c.txt".to_string()]
    );
    d.seed(&[("a/b.yaml", "x: 2\n")], "second\n\nbody line");
    d.remove_files(&["c.txt"], "third");
    assert_eq!(d.list_files(), vec!["a/b.yaml".to_string()]);
    let commits = d.commits();
    assert_eq!(commits.len(), 3);
    assert!(commits[0].ends_with(" third"));
    assert_eq!(d.commit_messages()[1], "second\n\nbody line");

    // Clone and push over git://.
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("c");
    let ok = git_command()
        .args(["clone", "--quiet", &d.url()])
        .arg(&clone)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(clone.join("new.yaml"), "y: 1\n").unwrap();
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
            .args(["commit", "-qm", "via daemon"])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        git_command()
            .arg("-C")
            .arg(&clone)
            .args(["push", "-q", "origin", "HEAD:main"])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(d.read_file("new.yaml").as_deref(), Some("y: 1\n"));
    assert!(d.non_fast_forward_updates().is_empty());
    assert_eq!(d.ref_updates().len(), 4);

    // Outage and restart on the same port.
    let port = d.port();
    d.stop();
    let down = git_command()
        .args(["ls-remote", &d.url()])
        .output()
        .unwrap();
    assert!(!down.status.success());
    d.restart();
    assert_eq!(d.port(), port);
    let up = git_command()
        .args(["ls-remote", &d.url()])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
}
