//! Issue 11: `fmnist predict --all --output FILE` writes the whole test set's probabilities as .csv or
//! .npy, on the CPU and on the GPU (the same probabilities within 1e-5), never replacing a file it was
//! not asked to. The GPU half skips without an adapter unless FMNIST_REQUIRE_GPU=1.

mod common;

use std::path::Path;

use common::{fmnist, stderr, stdout};
use fmnist::checkpoint;
use fmnist::data::CLASS_NAMES;
use fmnist::model::{MlpSpec, glorot_init};

/// A saved model (freshly initialised: its predictions are as checkable as a trained one's).
fn saved_model(dir: &Path) -> String {
    let spec = MlpSpec::fashion(&[32]).unwrap();
    let path = dir.join("model.safetensors");
    checkpoint::save(&path, &spec, &glorot_init(&spec, 5), &Default::default()).unwrap();
    path.to_str().unwrap().to_string()
}

fn predict_all(model: &str, out: &Path, device: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "predict",
        "--model",
        model,
        "--all",
        "--output",
        out.to_str().unwrap(),
        "--device",
        device,
    ];
    args.extend_from_slice(extra);
    fmnist(&args)
}

/// The float32 array of an .npy file numpy would write for (rows, cols).
fn read_npy(path: &Path) -> (String, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8(b[10..10 + len].to_vec()).unwrap();
    let data = b[10 + len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, data)
}

#[test]
fn all_predictions_as_csv_and_npy_agree_and_an_existing_file_is_kept() {
    let test = &common::dataset().test;
    let dir = tempfile::tempdir().unwrap();
    let model = saved_model(dir.path());
    let csv = dir.path().join("p.csv");
    let o = predict_all(&model, &csv, "cpu", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Wrote the probabilities of 10000 test images"),
        "{}",
        stdout(&o)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("index,label,predicted,{}", CLASS_NAMES.join(","))
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 10_000);
    let npy = dir.path().join("p.npy");
    let o = predict_all(&model, &npy, "cpu", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (header, probs) = read_npy(&npy);
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (10000, 10)"),
        "{header}"
    );
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[1], test.labels[i].to_string(), "row {i}: label");
        let p: Vec<f32> = row[3..].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(p, probs[i * 10..(i + 1) * 10], "row {i}: csv and npy");
        assert_eq!(
            row[2],
            fmnist::evaluate::argmax(&p).to_string(),
            "row {i}: predicted"
        );
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "row {i}: {p:?}");
    }
    // Asked again without --overwrite: refused, the file untouched; with it, rewritten.
    std::fs::write(&csv, "mine").unwrap();
    let o = predict_all(&model, &csv, "cpu", &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("p.csv: already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "mine");
    let o = predict_all(&model, &csv, "cpu", &["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
    // A name that says no format is refused before any work.
    let o = predict_all(&model, &dir.path().join("p.txt"), "cpu", &[]);
    assert!(
        stderr(&o).contains("must end in .csv or .npy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_gpu_writes_the_same_probabilities_within_1e5() {
    if common::gpu_or_skip("predict --all").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = saved_model(dir.path());
    let (cpu, gpu) = (dir.path().join("cpu.npy"), dir.path().join("gpu.npy"));
    for (path, device) in [(&cpu, "cpu"), (&gpu, "gpu")] {
        let o = predict_all(&model, path, device, &[]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
    }
    let (_, c) = read_npy(&cpu);
    let (_, g) = read_npy(&gpu);
    assert_eq!(c.len(), g.len());
    for (i, (a, b)) in c.iter().zip(&g).enumerate() {
        assert!((a - b).abs() <= 1e-5, "[{i}] cpu {a} gpu {b}");
    }
}
