//! The whole test set's predictions in a file, like Keras' `model.predict(test_images)`: a CSV (index,
//! true label, predicted class, then one probability column per class name) or a NumPy `.npy` array
//! (float32, `(n, classes)`, what `numpy.load` reads back). Used by `fmnist predict --all`. Tested below
//! and by tests/train_cpu.rs and tests/cli_gpu.rs (both devices).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::evaluate::Evaluation;

/// The formats `--output` takes, by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictionFormat {
    Csv,
    Npy,
}

impl PredictionFormat {
    /// The format `path`'s extension names.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("npy") => Ok(Self::Npy),
            _ => bail!(
                "{}: the file name must end in .csv or .npy (the format of the predictions)",
                path.display()
            ),
        }
    }

    /// `eval`'s predictions in this format, the columns named by `class_names`.
    pub fn encode(self, eval: &Evaluation, class_names: &[&str]) -> Vec<u8> {
        match self {
            Self::Csv => to_csv(eval, class_names).into_bytes(),
            Self::Npy => to_npy(&eval.probs, eval.len(), class_names.len()),
        }
    }
}

/// `index,label,predicted,<class names...>`, one row per sample; probabilities in the shortest form
/// that reads back as the same f32.
pub fn to_csv(eval: &Evaluation, class_names: &[&str]) -> String {
    let mut s = String::from("index,label,predicted");
    for name in class_names {
        s.push(',');
        s.push_str(name);
    }
    s.push('\n');
    for i in 0..eval.len() {
        let _ = write!(s, "{i},{},{}", eval.labels[i], eval.predicted(i));
        for p in eval.probs_of(i) {
            let _ = write!(s, ",{p}");
        }
        s.push('\n');
    }
    s
}

/// `probs (rows, cols)` as an NPY 1.0 file: the magic, a header dict padded with spaces to a multiple
/// of 64 bytes (as numpy writes it), then little-endian float32 in row-major order.
pub fn to_npy(probs: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(probs.len(), rows * cols, "probabilities of {rows}x{cols}");
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic (6) + version (2) + header length (2) + header, ending in '\n'.
    let unpadded = 10 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(10 + header_len + probs.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    for p in probs {
        out.extend_from_slice(&p.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_one_row_per_sample() {
        let mut probs = vec![0.0f32; 20];
        (probs[1], probs[9]) = (0.25, 0.75);
        (probs[10], probs[12]) = (0.9, 0.1);
        let eval = Evaluation {
            loss: 0.5,
            accuracy: 0.5,
            probs,
            labels: vec![9, 1],
        };
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let s = to_csv(&eval, &names);
        assert_eq!(
            s,
            "index,label,predicted,a,b,c,d,e,f,g,h,i,j\n\
             0,9,9,0,0.25,0,0,0,0,0,0,0,0.75\n\
             1,1,0,0.9,0,0.1,0,0,0,0,0,0,0\n"
        );
    }

    #[test]
    fn npy_is_what_numpy_writes() {
        let b = to_npy(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + header_len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"));
        assert!(header.ends_with(" \n"), "{header:?}");
        let data: Vec<f32> = b[10 + header_len..]
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn the_format_comes_from_the_extension() {
        assert_eq!(
            PredictionFormat::of(Path::new("p.CSV")).unwrap(),
            PredictionFormat::Csv
        );
        assert_eq!(
            PredictionFormat::of(Path::new("a/p.npy")).unwrap(),
            PredictionFormat::Npy
        );
        let e = PredictionFormat::of(Path::new("p.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.txt") && e.contains(".csv or .npy"), "{e}");
    }
}
