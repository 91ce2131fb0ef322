//! Issue 9, items 4 and 5: one run per folder, and a folder that always says what it holds. The
//! default folder never collides; `--out` on a run is refused (naming `--resume` and `--overwrite`); a
//! second process on a folder in use fails at once; `--overwrite` leaves nothing of the old run;
//! config.json records every input and a status; stale temp files are removed.

mod common;

use std::path::Path;

use common::{fmnist, fmnist_in, read_until, send_signal, spawn_fmnist, stderr, stdout};
use fmnist::run::{RunRecord, RunStatus};
use sha2::{Digest, Sha256};

const QUICK: [&str; 7] = [
    "train",
    "--device",
    "cpu",
    "--limit-train",
    "500",
    "--epochs",
    "1",
];

fn quick(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = QUICK.to_vec();
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    fmnist(&args)
}

#[test]
fn the_default_folder_never_reuses_a_taken_name() {
    let cwd = tempfile::tempdir().unwrap();
    let runs = cwd.path().join("runs");
    // Folders for every name the next minute could give, each holding someone else's config.json.
    let now = chrono::Local::now();
    for s in -1..60 {
        let name = (now + chrono::Duration::seconds(s))
            .format("%Y%m%d-%H%M%S")
            .to_string();
        std::fs::create_dir_all(runs.join(&name)).unwrap();
        std::fs::write(runs.join(&name).join("config.json"), "theirs").unwrap();
    }
    for _ in 0..3 {
        let o = fmnist_in(cwd.path(), &QUICK);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (mut ours, mut theirs) = (Vec::new(), 0);
    for entry in std::fs::read_dir(&runs).unwrap() {
        let dir = entry.unwrap().path();
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        if config == "theirs" {
            assert!(!dir.join("model.safetensors").exists(), "{}", dir.display());
            theirs += 1;
        } else {
            assert!(dir.join("model.safetensors").is_file(), "{}", dir.display());
            ours.push(dir);
        }
    }
    assert_eq!(theirs, 61, "no existing folder was written to");
    assert_eq!(ours.len(), 3, "three runs, three new folders: {ours:?}");
}

#[test]
fn out_on_a_folder_holding_a_run_is_refused_naming_resume_and_overwrite() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    assert!(quick(&dir, &[]).status.success());
    let model = std::fs::read(dir.join("model.safetensors")).unwrap();
    let o = quick(&dir, &["--seed", "7"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        err.contains("already holds a run (status: finished)")
            && err.contains("--resume")
            && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), model);
    assert!(
        quick(&dir, &["--seed", "7", "--overwrite"])
            .status
            .success()
    );
    assert_ne!(std::fs::read(dir.join("model.safetensors")).unwrap(), model);
}

#[test]
fn a_second_process_on_a_folder_in_use_fails_at_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("busy");
    let d = dir.to_str().unwrap();
    let mut first = spawn_fmnist(&["train", "--device", "cpu", "--epochs", "50", "--out", d]);
    let (_, mut rest) = read_until(&mut first, "Epoch 1/50");
    let second = quick(&dir, &["--overwrite"]);
    let resumed = fmnist(&["train", "--resume", d]);
    send_signal(&first, libc::SIGINT);
    std::io::Read::read_to_string(&mut rest, &mut String::new()).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(130));
    for o in [second, resumed] {
        assert!(
            !o.status.success() && stderr(&o).contains("another fmnist process is writing"),
            "{}",
            stderr(&o)
        );
    }
    // The first run's folder is its own: its config, its checkpoint.
    let record = RunRecord::read(&dir).unwrap();
    assert_eq!(
        (record.status, record.config.epochs),
        (RunStatus::Interrupted, 50)
    );
}

#[test]
fn config_json_records_every_input_and_the_status() {
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    assert!(quick(&first, &[]).status.success());
    let init = first.join("model.safetensors");
    let second = root.path().join("second");
    let o = quick(
        &second,
        &[
            "--init",
            init.to_str().unwrap(),
            "--data-dir",
            "/usr/share/datasets/fashion-mnist",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("config.json")).unwrap())
            .unwrap();
    let sha: String = Sha256::digest(std::fs::read(&init).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(json["status"], "finished");
    assert_eq!(json["init"]["sha256"], sha.as_str());
    assert!(
        json["init"]["path"]
            .as_str()
            .unwrap()
            .ends_with("first/model.safetensors")
    );
    assert_eq!(json["data_dir"], "/usr/share/datasets/fashion-mnist");
    assert_eq!(
        json["program"],
        format!("fmnist {}", env!("CARGO_PKG_VERSION")).as_str()
    );
    assert_eq!(
        (json["limit_train"].as_u64(), json["epochs_done"].as_u64()),
        (Some(500), Some(1))
    );
}

#[test]
fn a_diverged_run_over_an_old_one_leaves_nothing_of_it_and_says_diverged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    assert!(quick(&dir, &[]).status.success());
    assert!(dir.join("history.png").is_file());
    let o = quick(&dir, &["--overwrite", "--lr", "1e30"]);
    assert!(
        !o.status.success() && stderr(&o).contains("diverged"),
        "{}",
        stderr(&o)
    );
    let record = RunRecord::read(&dir).unwrap();
    assert_eq!(record.status, RunStatus::Diverged);
    assert_eq!(record.config.optimizer.learning_rate(), 1e30);
    assert!(record.message.unwrap().contains("diverged"));
    for old in [
        "model.safetensors",
        "checkpoint.safetensors",
        "history.png",
        "confusion.png",
    ] {
        assert!(
            !dir.join(old).exists(),
            "{old} of the previous run is still there"
        );
    }
    let o = fmnist(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("diverged"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stale_temp_files_are_removed_when_a_run_opens_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let stale = [
        ".model.safetensors.tmp-4242",
        ".config.json.x7Gq2LmP0a.fmnist-tmp",
    ];
    for name in stale {
        std::fs::write(dir.join(name), "half a file").unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    assert!(quick(&dir, &[]).status.success());
    for name in stale {
        assert!(!dir.join(name).exists(), "{name} is still there");
    }
    assert!(dir.join("notes.txt").exists(), "other files are left alone");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| fmnist::atomic::is_temp_name(n))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
