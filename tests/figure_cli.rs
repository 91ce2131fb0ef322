//! The figure commands end to end: `fmnist train` leaves its figures in the run folder, `fmnist plot`
//! redraws them, `fmnist show` and `predict --plot` write theirs, and bad flags give one error line.

use std::path::Path;
use std::process::{Command, Output};

fn fmnist(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn train_writes_figures_and_plot_redraws_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fmnist(
        &["train", "--epochs", "2", "--steps", "400", "--out", "run"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Per-class accuracy"), "{stdout}");
    let run = tmp.path().join("run");
    for name in [
        "history.png",
        "confusion.png",
        "predictions.png",
        "mistakes.png",
    ] {
        assert!(
            stdout.contains(&run_path(name)),
            "prints the path of {name}: {stdout}"
        );
        png_size(&run.join(name));
        std::fs::remove_file(run.join(name)).unwrap();
    }
    let out = fmnist(&["plot", "--run", "run"], tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "history.png",
        "confusion.png",
        "predictions.png",
        "mistakes.png",
    ] {
        png_size(&run.join(name));
    }
    let out = fmnist(&["plot", "--run", "nowhere"], tmp.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: --run nowhere: not a run folder"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");

    let model = "run/model.safetensors";
    let out = fmnist(
        &["predict", "--model", model, "--grid", "5x3", "--plot"],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        png_size(&tmp.path().join("predictions-5x3.png")),
        (1130, 910)
    );
    let out = fmnist(
        &[
            "predict", "--model", model, "--index", "12", "--plot", "--out", "p.png",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    assert_eq!(png_size(&tmp.path().join("p.png")), (660, 330));
    let out = fmnist(
        &[
            "predict", "--model", model, "--index", "1", "--index", "2", "--plot", "--out", "p.png",
        ],
        tmp.path(),
    );
    assert!(!out.status.success(), "--out with two figures is refused");
    let out = fmnist(&["predict", "--model", model, "--grid", "3by5"], tmp.path());
    assert!(!out.status.success());
}

fn run_path(name: &str) -> String {
    Path::new("run").join(name).display().to_string()
}

#[test]
fn show_draws_one_image_or_a_square_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fmnist(&["show", "--index", "0"], tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Ankle boot"));
    assert_eq!(png_size(&tmp.path().join("image-train-0.png")), (520, 412));
    let out = fmnist(
        &["show", "--grid", "9", "--split", "test", "--out", "g.png"],
        tmp.path(),
    );
    assert!(out.status.success());
    assert_eq!(png_size(&tmp.path().join("g.png")), (392, 446));
    let out = fmnist(&["show", "--grid", "24"], tmp.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--grid 24: not a square number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: use a square such as 16 or 25"),
        "{stderr}"
    );
    let out = fmnist(&["show", "--index", "60000"], tmp.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--index 60000"));
}
