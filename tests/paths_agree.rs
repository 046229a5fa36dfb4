//! The planner lays out new files by the Git layer's path rules: every path the planner
//! accepts, the Git layer writes, and every path it refuses (an object skipped with an
//! `UnsafePath` warning), the Git layer would have refused, failing the whole commit.

use gitcontroller_git::{Error, paths::normalize_relative};
use gitcontroller_sync::ObjectId;
use gitcontroller_sync::layout::{check_path, new_file_path};

const PATHS: &[&str] = &[
    "a.yaml",
    "ns/configmaps/web.yaml",
    "ns/widgets.example.com/a%5Cb.yaml",
    "ns/configmaps/..yaml",
    "ns/configmaps/.git.yaml",
    "ns/configmaps/x~2.yaml",
    "a/",
    "",
    "/",
    "/etc/x.yaml",
    "a//b.yaml",
    "./a.yaml",
    "a/./b.yaml",
    "../x.yaml",
    "a/../b.yaml",
    "..",
    ".git/config.yaml",
    "a/.GIT/b.yaml",
    "a\\b.yaml",
    "a\u{8}b.yaml",
    "a\tb.yaml",
    "a\nb.yaml",
    "a\u{7f}b.yaml",
    "a\u{85}b.yaml",
    "naïve/ünïcode.yaml",
];

#[test]
fn planner_and_git_layer_accept_and_refuse_the_same_paths() {
    for path in PATHS {
        match (check_path(path), normalize_relative(path, false)) {
            (Ok(()), Ok(_)) => {}
            (Err(ours), Err(Error::InvalidPath { reason, .. })) => {
                assert_eq!(ours.reason, reason, "{path:?}");
            }
            (ours, theirs) => panic!("{path:?}: planner {ours:?}, Git layer {theirs:?}"),
        }
    }
}

#[test]
fn every_layout_the_planner_makes_is_written_by_the_git_layer() {
    let names = [
        "web",
        "a\\b",
        "a%b",
        "a/b",
        ".git",
        "..",
        "a\u{8}b",
        "tab\there",
        "system:view",
    ];
    let namespaces = [Some("default"), Some(".git"), Some(".."), None];
    let mut refused = 0;
    for name in names {
        for ns in namespaces {
            let id = ObjectId::new("example.com", "Widget", ns, name);
            for root in ["", "clusters/prod"] {
                match new_file_path(root, &id, "widgets") {
                    Ok(path) => {
                        let written = normalize_relative(&path, false);
                        assert_eq!(written.as_deref(), Ok(path.as_str()), "{id}");
                    }
                    Err(unsafe_path) => {
                        refused += 1;
                        assert!(
                            normalize_relative(&unsafe_path.path, false).is_err(),
                            "{id}: the planner refused {unsafe_path}, which the Git layer writes"
                        );
                    }
                }
            }
        }
    }
    // Control characters and `.git`/`..` namespaces; the rest is encoded and written.
    assert_eq!(refused, 2 * (2 * 4 + 7 * 2));
}
