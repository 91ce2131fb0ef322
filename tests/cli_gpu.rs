//! The GPU commands end to end through the binary: `selftest` exits 0, `train --device gpu --profile`
//! writes a model that `evaluate --device gpu` reads, a bad `--adapter` is one clear line with a hint,
//! and `info` lists the adapters. Skips without an adapter unless FMNIST_REQUIRE_GPU=1.

mod common;

use std::process::Command;

fn fmnist(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(args)
        .output()
        .expect("the fmnist binary runs")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn selftest_exits_0_and_prints_the_table() {
    if common::gpu_or_skip("selftest").is_none() {
        return;
    }
    let o = fmnist(&["selftest"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("max abs")
            && t.contains("mm_tn")
            && t.contains("adam")
            && t.contains("train step"),
        "{t}"
    );
    assert!(t.contains("checks passed") && !t.contains("FAIL"), "{t}");
}

#[test]
fn a_bad_adapter_name_is_one_clear_line_with_the_adapters_and_a_hint() {
    for cmd in [
        &["selftest", "--adapter", "no-such-gpu-xyz"][..],
        &["profile", "--steps", "1", "--adapter", "no-such-gpu-xyz"][..],
    ] {
        let o = fmnist(cmd);
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(!t.contains("panicked"), "{t}");
        let err: Vec<&str> = t.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(err.len(), 1, "{t}");
        assert!(t.lines().any(|l| l.starts_with("hint:")), "{t}");
        if common::gpu_or_skip("bad adapter").is_some() {
            assert!(
                err[0].contains("matches no adapter") && err[0].contains("available"),
                "{t}"
            );
        }
    }
}

#[test]
fn train_on_the_gpu_with_profile_then_evaluate_on_the_gpu() {
    if common::gpu_or_skip("train gpu").is_none() {
        return;
    }
    if fmnist::data::locate(None).is_err() {
        assert!(!common::require_gpu(), "no dataset");
        println!("skipped: no data");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = fmnist(&[
        "train",
        "--device",
        "gpu",
        "--steps",
        "64",
        "--profile",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("Device: gpu:") && t.contains("Kernel profile over 64 steps"),
        "{t}"
    );
    assert!(t.contains("L1 fwd ") && t.contains("Host per step"), "{t}");
    assert!(out.join("model.safetensors").exists() && out.join("history.csv").exists());
    let model = out.join("model.safetensors");
    let g = fmnist(&[
        "evaluate",
        "--device",
        "gpu",
        "--model",
        model.to_str().unwrap(),
    ]);
    let c = fmnist(&[
        "evaluate",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(
        g.status.success() && c.status.success(),
        "{}\n{}",
        text(&g),
        text(&c)
    );
    // Same model, both devices: the printed accuracy agrees.
    let acc = |o: &std::process::Output| {
        text(o)
            .lines()
            .find(|l| l.starts_with("Test accuracy:"))
            .map(str::to_string)
    };
    assert_eq!(acc(&g), acc(&c), "{}\n{}", text(&g), text(&c));
}

#[test]
fn info_lists_the_gpu_adapters() {
    if common::gpu_or_skip("info").is_none() || fmnist::data::locate(None).is_err() {
        return;
    }
    let o = fmnist(&["info"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("gpu: ") && t.contains("timestamp queries"),
        "{t}"
    );
}

#[test]
fn selftest_passes_on_every_backend_that_offers_an_adapter() {
    // A kernel or binding that one backend mishandles (GL cannot view one layer of a texture array,
    // for instance) shows up only on that backend; lavapipe machines offer both Vulkan and GL.
    let mut ran = 0;
    for backend in ["vulkan", "gl"] {
        let o = Command::new(env!("CARGO_BIN_EXE_fmnist"))
            .arg("selftest")
            .env("WGPU_BACKEND", backend)
            .output()
            .expect("the fmnist binary runs");
        let t = text(&o);
        if t.contains("no GPU adapter found") {
            println!("{backend}: skipped: no adapter");
            continue;
        }
        assert!(
            o.status.success() && t.contains("checks passed"),
            "selftest on {backend}:\n{t}"
        );
        ran += 1;
    }
    if ran == 0 {
        assert!(
            !common::require_gpu(),
            "FMNIST_REQUIRE_GPU=1 but no backend offered an adapter"
        );
    }
}
