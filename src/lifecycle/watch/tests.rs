//! Unit tests of the watcher: which events count, how symlinks are followed.

use std::collections::BTreeSet;

use super::*;

#[test]
fn reading_is_not_a_change_but_finishing_a_write_is() {
    use notify::event::{CreateKind, ModifyKind, RemoveKind};
    assert!(!changes_content(&EventKind::Access(AccessKind::Open(
        AccessMode::Any
    ))));
    assert!(!changes_content(&EventKind::Access(AccessKind::Close(
        AccessMode::Read
    ))));
    assert!(changes_content(&EventKind::Access(AccessKind::Close(
        AccessMode::Write
    ))));
    assert!(changes_content(&EventKind::Create(CreateKind::File)));
    assert!(changes_content(&EventKind::Modify(ModifyKind::Any)));
    assert!(changes_content(&EventKind::Remove(RemoveKind::File)));
}

#[test]
fn symlinks_are_followed_to_each_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (etc, live) = (dir.path().join("etc"), dir.path().join("live"));
    std::fs::create_dir_all(&etc).expect("mkdir");
    std::fs::create_dir_all(&live).expect("mkdir");
    std::fs::write(live.join("cert3.pem"), "x").expect("write");
    std::os::unix::fs::symlink("cert3.pem", live.join("cert.pem")).expect("link");
    std::os::unix::fs::symlink(live.join("cert.pem"), etc.join("cert.pem")).expect("link");
    // A loop ends at the hop limit instead of spinning.
    std::os::unix::fs::symlink("b", etc.join("a")).expect("link");
    std::os::unix::fs::symlink("a", etc.join("b")).expect("link");
    let targets = Targets::of(&[etc.join("cert.pem"), etc.join("a")]);
    let dirs: BTreeSet<&PathBuf> = targets.dirs.keys().collect();
    assert_eq!(dirs, BTreeSet::from([&etc, &live]));
    assert_eq!(targets.dirs[&etc], std::fs::canonicalize(&etc).ok());
    let files = ["cert.pem", "a", "b"].map(|n| etc.join(n));
    let expected: HashSet<PathBuf> = files
        .into_iter()
        .chain(["cert.pem", "cert3.pem"].map(|n| live.join(n)))
        .collect();
    assert_eq!(targets.files, expected);
}

#[test]
fn matches_named_files_their_directories_and_dot_dot_names_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (yaml, ca) = (
        dir.path().join("wsgate.yaml"),
        dir.path().join("certs/ca.pem"),
    );
    let watched = Watched {
        debouncer: new_debouncer(DEBOUNCE, None, |_: DebounceEventResult| {}).expect("new"),
        dirs: BTreeMap::from([(dir.path().to_path_buf(), None)]),
        files: HashSet::from([yaml.clone(), ca]),
    };
    let paths = |p: &[PathBuf]| Change::Paths(p.to_vec());
    assert!(watched.relevant(&paths(&[yaml])));
    // `certs` is a symlink swapped to another directory.
    assert!(watched.relevant(&paths(&[dir.path().join("certs")])));
    assert!(!watched.relevant(&paths(&[dir.path().join("certs.v2")])));
    assert!(watched.relevant(&paths(&[dir.path().join("..data")])));
    assert!(watched.relevant(&Change::Unknown));
    assert!(!watched.relevant(&paths(&[dir.path().join("other.yaml")])));
    assert!(!watched.relevant(&paths(&[PathBuf::from("/elsewhere/..data")])));
    assert!(!watched.relevant(&paths(&[])));
}

fn test_reloader() -> Reloader {
    let yaml = "listeners: [ { name: p, bind: \"127.0.0.1:0\" } ]\nroutes: [ { path: /, pool: p } ]\npools: { p: { backends: [ { url: \"ws://127.0.0.1:1\" } ] } }\n";
    let config = crate::config::load_str(yaml, "t.yaml", Path::new("")).expect("config");
    crate::Gateway::new(config).expect("gateway").reloader()
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let reloader = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async { test_reloader() })
    };
    assert!(spawn(reloader, Vec::new()).is_err());
}
