//! Issue 10, item 7: messages that say what is really wrong, once, on one line.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{fmnist, fmnist_in, small_model, stderr, tiny_data};

/// Runs fmnist as an unprivileged user when the test runs as root (root reads any folder).
fn fmnist_unprivileged(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fmnist"));
    c.args(args);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        c.uid(65534).gid(65534);
    }
    c.output().unwrap()
}

#[test]
fn an_unreadable_data_folder_is_reported_as_unreadable_not_as_missing() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    tiny_data(&data, None);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o000)).unwrap();
    let o = fmnist_unprivileged(&["info", "--data-dir", data.to_str().unwrap()]);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("cannot read the data folder"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        !err.contains("not found") && !err.contains("make setup"),
        "{err}"
    );
}

#[test]
fn a_weight_stored_transposed_is_named_as_transposed() {
    let zeros = vec![0.0f32; 784 * 128];
    let t = |name: &str, shape: Vec<usize>| fmnist::tensorfile::Tensor {
        name: name.to_string(),
        data: &zeros[..shape.iter().product::<usize>()],
        shape,
    };
    for (i, tensors) in [
        vec![
            t("layers.0.weight", vec![128, 784]),
            t("layers.0.bias", vec![128]),
            t("layers.1.weight", vec![128, 10]),
            t("layers.1.bias", vec![10]),
        ],
        vec![
            t("layers.0.weight", vec![784, 128]),
            t("layers.0.bias", vec![128]),
            t("layers.1.weight", vec![10, 128]),
            t("layers.1.bias", vec![10]),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = fmnist::tensorfile::serialize(&tensors, &[]);
        let e = format!("{:#}", fmnist::checkpoint::parse(&bytes).unwrap_err());
        let name = format!("layers.{i}.weight");
        assert!(
            e.contains(&name) && e.contains("stored transposed") && !e.contains("bias"),
            "{e}"
        );
    }
}

#[test]
fn a_mistyped_adapter_with_device_auto_is_an_error_not_a_silent_cpu_run() {
    if fmnist::gpu::context::list_adapters().is_empty() {
        assert!(
            !common::require_gpu(),
            "FMNIST_REQUIRE_GPU=1 but no adapter"
        );
        println!("skipped: no adapter");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path(), None);
    let model = small_model(dir.path());
    let o = fmnist(&[
        "evaluate",
        "--device",
        "auto",
        "--adapter",
        "no-such-gpu-xyz",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--adapter \"no-such-gpu-xyz\" matches no adapter"),
        "{err}"
    );
}

#[test]
fn an_empty_test_split_is_refused_at_once_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path(), Some(0));
    let model = small_model(dir.path());
    let data = dir.path().to_str().unwrap();
    for args in [
        &[
            "train",
            "--device",
            "cpu",
            "--data-dir",
            data,
            "--out",
            "unused",
        ][..],
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data-dir",
            data,
            "--index",
            "0",
        ],
    ] {
        let o = fmnist_in(dir.path(), args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("t10k-images-idx3-ubyte.gz: the header declares no images"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("18446744073709551615"), "{err}");
        assert!(!dir.path().join("unused").exists(), "no run was started");
    }
}

#[test]
fn an_os_error_is_said_once_and_a_decoder_message_keeps_to_one_line() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path(), None);
    let images = dir.path().join(fmnist::data::TEST_IMAGES);
    std::fs::remove_file(&images).unwrap();
    std::fs::create_dir(&images).unwrap();
    let model = small_model(dir.path());
    let o = fmnist(&[
        "evaluate",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("not a regular file (a folder)"), "{err}");
    assert!(line.matches("os error").count() <= 1, "{err}");
    // zune-jpeg ends this message with a newline: an APP0 segment shorter than its own length field.
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0, 0, 0, 0, 0, 0]).unwrap();
    let o = fmnist(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(err.contains("invalid length"), "{err}");
    assert!(!err.contains("\n\n") && !err.contains("\n\r"), "{err:?}");
    for l in err.lines() {
        assert!(
            l.starts_with("error: ")
                || l.starts_with("hint: ")
                || l.contains("could not be predicted"),
            "{err:?}"
        );
    }
}

#[test]
fn photos_with_the_same_name_in_two_folders_get_two_figures() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/samples/test-0-ankle-boot.png"
    );
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        std::fs::copy(sample, dir.path().join(sub).join("shoe.png")).unwrap();
    }
    let o = fmnist_in(
        dir.path(),
        &[
            "predict",
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "--plot",
            "a/shoe.png",
            "b/shoe.png",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = common::stdout(&o);
    assert!(out.contains("Figure saved to prediction-shoe.png"), "{out}");
    assert!(
        out.contains("Figure saved to prediction-shoe-2.png"),
        "{out}"
    );
    assert!(dir.path().join("prediction-shoe.png").exists());
    assert!(dir.path().join("prediction-shoe-2.png").exists());
}
