//! Issue 10, item 8: `make setup` asks fmnist where it finds the data, so data in any folder fmnist
//! searches (here Keras' cache under $HOME) is not installed again, and running it twice is safe.
//! apt-get and sudo are stand-ins on PATH that only log how they were called.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

mod common;

fn stub(dir: &Path, name: &str, log: &Path) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"{name} $*\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn make_setup_asks_fmnist_and_installs_no_dataset_when_fmnist_finds_one() {
    let home = tempfile::tempdir().unwrap();
    let keras = home.path().join(".keras/datasets/fashion-mnist");
    std::fs::create_dir_all(&keras).unwrap();
    common::tiny_data(&keras, None);
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls.log");
    stub(bin.path(), "apt-get", &log);
    stub(bin.path(), "sudo", &log);
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = || {
        Command::new("make")
            .args(["-s", "-C", env!("CARGO_MANIFEST_DIR"), "setup"])
            // No build (the test's binary is the one asked); the Makefile's own search paths
            // would miss the Keras folder, fmnist's search does not.
            .arg("CARGO=true")
            .arg(format!("FMNIST={}", env!("CARGO_BIN_EXE_fmnist")))
            .arg("DATA_DIR=/nonexistent")
            .env("HOME", home.path())
            .env("PATH", &path)
            .env_remove("FMNIST_DATA")
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let o = run();
        let out = common::stdout(&o);
        assert!(o.status.success(), "{out}{}", common::stderr(&o));
        assert!(
            out.contains(&format!("setup: data found in {}", keras.display())),
            "{out}"
        );
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(!calls.contains("dataset-fashion-mnist"), "{calls}");
    }
}
