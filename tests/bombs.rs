//! Issue 10, items 1 and 2: inputs that are small on disk but ask for huge memory (decompression bombs,
//! sizes that multiply) end in one `error:` line naming the limit, within 300 MB (the process runs under
//! that data limit, and its peak resident memory is checked too) and without a hang (the 20 s guard
//! only catches hangs; the measured times are printed, well under 2 s here).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Measured, run_measured};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use fmnist::data::{self, encode_idx};

const PEAK_MB: f64 = 300.0;

fn assert_refused(m: &Measured, expected: &[&str]) {
    assert!(
        m.peak_mb < PEAK_MB,
        "peak memory {:.0} MB, over {PEAK_MB} MB:\n{}",
        m.peak_mb,
        m.stderr
    );
    assert_eq!(
        m.code,
        Some(1),
        "a clean failure, not an abort (signal {:?}):\n{}",
        m.signal,
        m.stderr
    );
    let errors = m.errors();
    assert_eq!(errors.len(), 1, "one error line:\n{}", m.stderr);
    for e in expected {
        assert!(errors[0].contains(e), "`{e}` in: {}", errors[0]);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid tiny dataset (3 train, 2 test samples).
fn tiny_data(dir: &Path) {
    let images = |n: u32| encode_idx(3, &[n, 28, 28], &vec![7u8; n as usize * 784]);
    let labels = |v: &[u8]| encode_idx(1, &[v.len() as u32], v);
    for (name, bytes) in [
        (data::TRAIN_IMAGES, images(3)),
        (data::TRAIN_LABELS, labels(&[0, 9, 4])),
        (data::TEST_IMAGES, images(2)),
        (data::TEST_LABELS, labels(&[1, 2])),
    ] {
        std::fs::write(dir.join(name), gzip(&bytes)).unwrap();
    }
}

fn small_model(dir: &Path) -> PathBuf {
    let path = dir.join("m.safetensors");
    let spec = fmnist::model::MlpSpec::fashion(&[8]).unwrap();
    let params = fmnist::model::glorot_init(&spec, 1);
    fmnist::checkpoint::save(&path, &spec, &params, &Default::default()).unwrap();
    path
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A black `side` x `side` 1-bit PNG: tens of KB on disk, `side`^2 bytes once expanded to 8 bits.
fn one_bit_png(side: u32) -> Vec<u8> {
    let row = vec![0u8; 1 + side.div_ceil(8) as usize];
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    for _ in 0..side {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, greyscale, deflate, adaptive, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_20000x20000_and_a_23000x23000_one_bit_png_are_refused_by_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    for side in [20_000, 23_000] {
        let bomb = dir.path().join(format!("bomb-{side}.png"));
        let png = one_bit_png(side);
        assert!(png.len() < 70_000, "{} bytes", png.len());
        std::fs::write(&bomb, png).unwrap();
        let m = run_measured(
            &[
                "predict",
                "--device",
                "cpu",
                "--model",
                model.to_str().unwrap(),
                bomb.to_str().unwrap(),
            ],
            &[],
            300,
        );
        assert_refused(&m, &[&format!("{side}x{side}"), "megapixels"]);
        assert!(
            m.stderr.contains("2 of 2") || m.stderr.contains("1 of 1"),
            "{}",
            m.stderr
        );
    }
}

#[test]
fn a_gzip_holding_2_gib_of_zeros_after_a_valid_header_is_refused_after_the_declared_data() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    // 60000 images declared, as in the real file; then 2 GiB of zeros, streamed into the file.
    let file = std::fs::File::create(dir.path().join(data::TRAIN_IMAGES)).unwrap();
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::best());
    gz.write_all(&encode_idx(3, &[60_000, 28, 28], &[]))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..2048 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap().flush().unwrap();
    let size = std::fs::metadata(dir.path().join(data::TRAIN_IMAGES))
        .unwrap()
        .len();
    assert!(size < 4 << 20, "{size} bytes");
    let m = run_measured(
        &["info", "--data-dir", dir.path().to_str().unwrap()],
        &[],
        300,
    );
    assert_refused(
        &m,
        &[
            data::TRAIN_IMAGES,
            "bytes after the 47040000 bytes the header promises",
        ],
    );
}

#[test]
fn hidden_65536_65536_is_refused_against_the_memory_budget_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    for device in ["cpu", "gpu"] {
        let out = dir.path().join(format!("run-{device}"));
        let m = run_measured(
            &[
                "train",
                "--hidden",
                "65536,65536",
                "--device",
                device,
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
            300,
        );
        assert_refused(&m, &["--hidden 65536,65536", "GiB", "FMNIST_MEMORY_BUDGET"]);
        assert!(m.stderr.contains("hint: "), "{}", m.stderr);
    }
}

#[test]
fn the_memory_budget_is_raised_and_lowered_by_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    let run = |budget: &str| {
        run_measured(
            &[
                "train",
                "--hidden",
                "512",
                "--device",
                "cpu",
                "--epochs",
                "1",
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--out",
                dir.path().join(format!("run-{budget}")).to_str().unwrap(),
            ],
            &[("FMNIST_MEMORY_BUDGET", budget)],
            300,
        )
    };
    assert_refused(&run("10M"), &["784-512-10", "budget of 10 MiB"]);
    let m = run("64M");
    assert_eq!(m.code, Some(0), "{}", m.stderr);
}

#[test]
fn a_checkpoint_with_a_500000_wide_layer_is_refused_before_its_weights_are_copied() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    let zeros = vec![0.0f32; 5_000_000];
    let t = |name: &str, shape: Vec<usize>| fmnist::tensorfile::Tensor {
        name: name.to_string(),
        data: &zeros[..shape.iter().product::<usize>()],
        shape,
    };
    let bytes = fmnist::tensorfile::serialize(
        &[
            t("layers.0.weight", vec![784, 1]),
            t("layers.0.bias", vec![1]),
            t("layers.1.weight", vec![1, 500_000]),
            t("layers.1.bias", vec![500_000]),
            t("layers.2.weight", vec![500_000, 10]),
            t("layers.2.bias", vec![10]),
        ],
        &[],
    );
    assert!(bytes.len() > 20 << 20);
    let model = dir.path().join("wide.safetensors");
    std::fs::write(&model, bytes).unwrap();
    let m = run_measured(
        &[
            "evaluate",
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
        300,
    );
    assert_refused(&m, &["wide.safetensors", "500000 units", "at most 65536"]);
}

#[test]
fn a_93_mb_header_listing_1_35_million_tensors_is_refused_by_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = String::from("{");
    for i in 0..1_350_000 {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"layers.{i}.weight\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"
        ));
    }
    header.push('}');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    assert!(bytes.len() > 90_000_000, "{} bytes", bytes.len());
    let model = dir.path().join("many.safetensors");
    std::fs::write(&model, bytes).unwrap();
    let m = run_measured(
        &[
            "evaluate",
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
        ],
        &[],
        300,
    );
    assert_refused(&m, &["many.safetensors", "header", "4194304 bytes"]);
}
