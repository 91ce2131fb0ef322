//! Issue 9, item 2: files are written through temporary files created exclusively under unpredictable
//! names, so symlinks planted at guessable names are never followed, and the result is a plain file.
#![cfg(unix)]

use std::os::unix::fs::symlink;

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
