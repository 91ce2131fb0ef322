//! Checkpoint format: round trip, a clear error for every way a file can be wrong, and (issue 9,
//! item 6) the same seed gives the same bytes.

mod common;

use std::collections::HashMap;

use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::model::{MlpSpec, glorot_init};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize};

fn write_tensors(path: &std::path::Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        path,
        serialize(views, None::<HashMap<String, String>>).unwrap(),
    )
    .unwrap();
}

fn f32s(n: usize) -> Vec<u8> {
    vec![0u8; n * 4]
}

fn load_err(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.safetensors");
    write_tensors(&p, tensors);
    format!("{:#}", checkpoint::load(&p).expect_err("must be refused"))
}

#[test]
fn round_trip_keeps_shape_params_and_metadata() {
    let spec = MlpSpec::fashion(&[256, 128]).unwrap();
    let params = glorot_init(&spec, 9);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/m.safetensors");
    let meta = CheckpointMeta {
        epochs: Some(10),
        seed: Some(9),
        steps: Some(18750),
        ..Default::default()
    };
    checkpoint::save(&p, &spec, &params, &meta).unwrap();
    // What the browser offers as a download is the file `save` writes, byte for byte.
    let bytes = checkpoint::to_bytes(&spec, &params, &meta);
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
    let ck = checkpoint::load(&p).unwrap();
    assert_eq!((ck.spec, ck.params, ck.meta), (spec, params, meta));
    let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file left behind: {leftovers:?}"
    );
}

#[test]
fn a_foreign_file_with_the_right_tensors_and_no_metadata_loads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keras.safetensors");
    write_tensors(
        &p,
        &[
            ("layers.0.weight", Dtype::F32, vec![784, 5], f32s(3920)),
            ("layers.0.bias", Dtype::F32, vec![5], f32s(5)),
            ("layers.1.weight", Dtype::F32, vec![5, 10], f32s(50)),
            ("layers.1.bias", Dtype::F32, vec![10], f32s(10)),
        ],
    );
    let ck = checkpoint::load(&p).unwrap();
    assert_eq!(ck.spec.hidden, vec![5]);
    assert_eq!(ck.meta, CheckpointMeta::default());
}

#[test]
fn wrong_names_dtypes_and_shapes_are_each_named() {
    let e = load_err(&[("dense.kernel", Dtype::F32, vec![784, 10], f32s(7840))]);
    assert!(
        e.contains("no tensor named layers.0.weight") && e.contains("dense.kernel"),
        "{e}"
    );
    let e = load_err(&[("layers.0.weight", Dtype::F32, vec![784, 10], f32s(7840))]);
    assert!(e.contains("missing tensor layers.0.bias"), "{e}");
    let e = load_err(&[
        (
            "layers.0.weight",
            Dtype::F64,
            vec![784, 10],
            vec![0; 7840 * 8],
        ),
        ("layers.0.bias", Dtype::F32, vec![10], f32s(10)),
    ]);
    assert!(e.contains("layers.0.weight is F64, expected F32"), "{e}");
    let e = load_err(&[
        ("layers.0.weight", Dtype::F32, vec![784, 10], f32s(7840)),
        ("layers.0.bias", Dtype::F32, vec![9], f32s(9)),
    ]);
    assert!(
        e.contains("layers.0.bias has shape [9], expected [10]"),
        "{e}"
    );
    let e = load_err(&[
        ("layers.0.weight", Dtype::F32, vec![100, 10], f32s(1000)),
        ("layers.0.bias", Dtype::F32, vec![10], f32s(10)),
    ]);
    assert!(e.contains("100 inputs to 10 outputs"), "{e}");
    let e = load_err(&[
        ("layers.0.weight", Dtype::F32, vec![784, 4], f32s(3136)),
        ("layers.0.bias", Dtype::F32, vec![4], f32s(4)),
        ("layers.1.weight", Dtype::F32, vec![5, 10], f32s(50)),
        ("layers.1.bias", Dtype::F32, vec![10], f32s(10)),
    ]);
    assert!(
        e.contains("layers.1.weight takes 5 inputs but layer 0 gives 4"),
        "{e}"
    );
    let e = load_err(&[
        ("layers.0.weight", Dtype::F32, vec![784, 10], f32s(7840)),
        ("layers.0.bias", Dtype::F32, vec![10], f32s(10)),
        ("optimizer.m", Dtype::F32, vec![1], f32s(1)),
    ]);
    assert!(e.contains("unexpected tensor optimizer.m"), "{e}");
}

#[test]
fn non_finite_weights_are_refused() {
    let mut w = f32s(7840);
    w[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = load_err(&[
        ("layers.0.weight", Dtype::F32, vec![784, 10], w),
        ("layers.0.bias", Dtype::F32, vec![10], f32s(10)),
    ]);
    assert!(e.contains("NaN"), "{e}");
}

#[test]
fn the_same_seed_gives_byte_identical_model_and_checkpoint_files() {
    let root = tempfile::tempdir().unwrap();
    let files = |name: &str| {
        let dir = root.path().join(name);
        let o = common::fmnist(&[
            "train",
            "--device",
            "cpu",
            "--limit-train",
            "1000",
            "--epochs",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        ["model.safetensors", "checkpoint.safetensors"].map(|f| std::fs::read(dir.join(f)).unwrap())
    };
    let (a, b) = (files("a"), files("b"));
    assert!(
        a[0] == b[0],
        "model.safetensors differs between two runs of one seed"
    );
    assert!(
        a[1] == b[1],
        "checkpoint.safetensors differs between two runs of one seed"
    );
    // The metadata comes in one documented order.
    let header_len = u64::from_le_bytes(a[0][..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&a[0][8..8 + header_len]).unwrap();
    let keys = [
        "\"format\"",
        "\"hidden\"",
        "\"class_names\"",
        "\"epochs\"",
        "\"seed\"",
        "\"steps\"",
    ];
    let at: Vec<usize> = keys.iter().map(|k| header.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
}
