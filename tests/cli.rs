//! Bad input at the command line: one clear error line, a hint where one helps, non-zero exit, no panic.

mod common;

use common::{fmnist, stderr, stdout};

fn assert_clean_failure(args: &[&str], expected: &[&str]) -> String {
    let o = fmnist(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} must fail");
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    for e in expected {
        assert!(
            err.contains(e),
            "{args:?}: expected `{e}` in stderr:\n{err}"
        );
    }
    err
}

#[test]
fn missing_data_dir_names_the_folder_and_how_to_get_the_data() {
    let err = assert_clean_failure(
        &["train", "--data-dir", "/nonexistent/fm", "--device", "cpu"],
        &["/nonexistent/fm", "hint:", "make setup"],
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn corrupt_checkpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"this is not a checkpoint").unwrap();
    let err = assert_clean_failure(
        &[
            "evaluate",
            "--model",
            bad.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &["bad.safetensors", "not a usable fmnist checkpoint"],
    );
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert_clean_failure(
        &[
            "predict",
            "--model",
            dir.path().join("none.safetensors").to_str().unwrap(),
        ],
        &["none.safetensors", "file not found"],
    );
}

#[test]
fn nonsense_flags_are_refused() {
    assert_clean_failure(&["train", "--batch-size", "0"], &["--batch-size", "0"]);
    assert_clean_failure(&["train", "--lr=-1", "--device", "cpu"], &["--lr"]);
    assert_clean_failure(&["train", "--hidden", "128,0"], &["--hidden"]);
    assert_clean_failure(&["train", "--device", "tpu"], &["--device", "tpu"]);
    assert_clean_failure(
        &["train", "--epochs", "0", "--device", "cpu"],
        &["--epochs"],
    );
}

#[test]
fn optimizer_flags_are_checked_and_a_flag_the_optimizer_lacks_is_refused() {
    let cases: [(&[&str], &str); 8] = [
        (&["--optimizer", "adagrad"], "--optimizer"),
        (
            &["--momentum", "0.9"],
            "--momentum: --optimizer adam has no such hyper-parameter",
        ),
        (
            &["--optimizer", "sgd", "--rho", "0.9"],
            "--rho: --optimizer sgd has no such",
        ),
        (
            &["--optimizer", "rmsprop", "--nesterov"],
            "--nesterov: --optimizer rmsprop",
        ),
        (
            &["--optimizer", "sgd", "--beta1", "0.9"],
            "--beta1: --optimizer sgd",
        ),
        (
            &["--optimizer", "sgd", "--momentum", "1"],
            "--momentum 1: the momentum must lie in [0, 1)",
        ),
        (
            &["--optimizer", "rmsprop", "--rho", "-0.1"],
            "--rho -0.1: rho must lie in [0, 1)",
        ),
        (
            &["--epsilon", "0"],
            "--epsilon 0: epsilon must be a positive number",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--device", "cpu"];
        args.extend_from_slice(flags);
        let err = assert_clean_failure(&args, &[expected]);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
    }
}

#[test]
fn predict_refuses_an_index_outside_the_test_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let spec = fmnist::model::MlpSpec::fashion(&[8]).unwrap();
    fmnist::checkpoint::save(
        &model,
        &spec,
        &fmnist::model::glorot_init(&spec, 1),
        &Default::default(),
    )
    .unwrap();
    assert_clean_failure(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--index",
            "10000",
        ],
        &["--index 10000", "0-9999"],
    );
}

#[test]
fn argument_errors_are_one_error_line_and_a_hint_with_exit_code_2() {
    for args in [
        &["train", "--foo"][..],
        &["train", "--batch-size", "0"],
        &["train", "--epochs", "many"],
        &["predict"],
        &["evaluate", "--model"],
        &["frobnicate"],
    ] {
        let o = common::fmnist(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(lines[1].starts_with("hint: "), "{err}");
        assert!(
            !err.contains("Usage:") && !err.contains("For more information"),
            "{err}"
        );
    }
    let err = stderr(&common::fmnist(&["train", "--batch-size", "0"]));
    assert!(
        err.contains("hint: `fmnist train --help` lists the flags"),
        "{err}"
    );
}

#[test]
fn help_and_version_still_print() {
    let o = common::fmnist(&["train", "--help"]);
    assert!(o.status.success());
    assert!(common::stdout(&o).contains("Usage: fmnist train"));
    let o = common::fmnist(&["--version"]);
    assert!(o.status.success());
    assert!(common::stdout(&o).starts_with("fmnist "));
}

#[test]
fn info_data_dir_only_prints_the_folder_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_data(dir.path(), None);
    let o = common::fmnist(&[
        "info",
        "--data-dir-only",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(common::stdout(&o).trim(), dir.path().to_str().unwrap());
    let o = common::fmnist(&["info", "--data-dir-only", "--data-dir", "/nonexistent/fm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(common::stdout(&o).is_empty());
}

/// Issue 11: `fmnist summary` prints Keras' model.summary() for `--hidden` and for a saved model.
#[test]
fn summary_prints_keras_table_for_hidden_layers_and_for_a_checkpoint() {
    let o = fmnist(&["summary"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    for line in [
        "Model: \"sequential\"",
        "│ dense (Dense)                   │ (None, 128)            │       100,480 │",
        "│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │",
        " Total params: 101,770 (397.54 KB)",
    ] {
        assert!(out.contains(line), "missing `{line}` in\n{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.safetensors");
    let spec = fmnist::model::MlpSpec::fashion(&[64, 32]).unwrap();
    let params = fmnist::model::glorot_init(&spec, 3);
    fmnist::checkpoint::save(&path, &spec, &params, &Default::default()).unwrap();
    let o = fmnist(&["summary", "--model", path.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Model: \"deep.safetensors\""), "{out}");
    assert!(out.contains("│ dense_2 (Dense)"), "{out}");
    // 784*64+64 + 64*32+32 + 32*10+10
    assert!(out.contains(" Total params: 52,650 ("), "{out}");
    assert_clean_failure(
        &[
            "summary",
            "--hidden",
            "64",
            "--model",
            path.to_str().unwrap(),
        ],
        &["--hidden", "--model"],
    );
}
