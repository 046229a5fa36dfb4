//! The test harness's Git server is real: a clone over git:// sees what was seeded, and a push
//! over git:// lands in the bare repository.

use gitcontroller_testkit::git_server::{GitDaemon, git_command};

#[test]
fn seed_clone_push_and_read_back_through_git_daemon() {
    let daemon = GitDaemon::start();
    let seeded = daemon.seed(&[("apps/web.yaml", "kind: ConfigMap\n")], "seed");

    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("clone");
    let status = git_command()
        .args(["clone", "-q", "--branch", "main", &daemon.url()])
        .arg(&clone)
        .status()
        .unwrap();
    assert!(status.success(), "clone over git:// failed");
    assert_eq!(
        std::fs::read_to_string(clone.join("apps/web.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );

    std::fs::write(clone.join("pushed.yaml"), "kind: Secret\n").unwrap();
    for args in [
        &["add", "pushed.yaml"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "from a client",
        ],
        &["push", "-q", "origin", "main"],
    ] {
        let status = git_command()
            .current_dir(&clone)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?} failed");
    }

    assert_eq!(
        daemon.read_file("pushed.yaml").as_deref(),
        Some("kind: Secret\n")
    );
    assert_eq!(daemon.list_files(), vec!["apps/web.yaml", "pushed.yaml"]);
    assert!(daemon.is_ancestor(&seeded, &daemon.head()));
    assert!(
        daemon
            .commit_messages()
            .iter()
            .any(|m| m.contains("from a client"))
    );
}
