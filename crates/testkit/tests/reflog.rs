//! The no-force-push check itself: it sees a force-push, and it fails (rather than passing
//! vacuously) when the reflog it relies on is missing or incomplete.

use gitcontroller_testkit::git_server::{BareRepo, git_command};

fn bare_with_two_commits() -> BareRepo {
    let repo = BareRepo::new();
    repo.seed(&[("a.yaml", "a: 1\n")], "one");
    repo.seed(&[("a.yaml", "a: 2\n")], "two");
    repo
}

#[test]
fn fast_forward_pushes_pass_and_a_force_push_is_caught() {
    let repo = bare_with_two_commits();
    assert_eq!(repo.ref_updates().len(), 2);
    assert!(repo.non_fast_forward_updates().is_empty());

    let first = repo.commits().last().unwrap()[..40].to_string();
    let moved = git_command()
        .arg("--git-dir")
        .arg(repo.path())
        .args(["update-ref", "-m", "rewind", "refs/heads/main", &first])
        .status()
        .unwrap();
    assert!(moved.success());
    let rewinds = repo.non_fast_forward_updates();
    assert_eq!(rewinds.len(), 1, "{rewinds:?}");
    assert_eq!(rewinds[0].new, first);
}

#[test]
#[should_panic(expected = "cannot be read")]
fn a_missing_reflog_fails_the_check() {
    let repo = bare_with_two_commits();
    std::fs::remove_file(repo.path().join("logs/refs/heads/main")).unwrap();
    let _ = repo.non_fast_forward_updates();
}

#[test]
#[should_panic(expected = "gap")]
fn a_reflog_with_a_gap_fails_the_check() {
    let repo = bare_with_two_commits();
    repo.seed(&[("a.yaml", "a: 3\n")], "three");
    let log = repo.path().join("logs/refs/heads/main");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Drop the middle update: the last one's old tip no longer follows the first's new one.
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let _ = repo.non_fast_forward_updates();
}

#[test]
fn a_branch_not_created_yet_has_no_updates() {
    assert!(BareRepo::new().ref_updates().is_empty());
}
