//! Issue 9, item 2: files are written through temporary files created exclusively under unpredictable
//! names, so symlinks planted at guessable names are never followed, and the result is a plain file.
#![cfg(unix)]

mod common;

use std::os::unix::fs::symlink;

use common::{fmnist, stderr};
use fmnist::atomic::write_atomic;

#[test]
fn symlinks_planted_at_temp_names_are_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, "root-only data").unwrap();
    let dir = root.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    // The names earlier versions used: `.<name>.tmp-<pid>`, for this process and the next ones.
    let pid = std::process::id();
    for p in pid..pid + 50 {
        symlink(&victim, dir.join(format!(".config.json.tmp-{p}"))).unwrap();
    }
    // And the target itself: a link there is replaced, never written through.
    symlink(&victim, dir.join("config.json")).unwrap();
    write_atomic(&dir.join("config.json"), b"{}").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root-only data");
    let meta = std::fs::symlink_metadata(dir.join("config.json")).unwrap();
    assert!(
        meta.file_type().is_file(),
        "config.json must be a plain file"
    );
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), b"{}");
}

#[test]
fn a_planted_lock_symlink_is_refused_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    symlink(&victim, dir.join(".fmnist.lock")).unwrap();
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--limit-train",
        "100",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a planted lock link must stop the run");
    assert!(
        stderr(&o).contains("cannot open the lock file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(!dir.join("config.json").exists());
}
