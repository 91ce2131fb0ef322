//! Every size fmnist accepts from outside, checked before anything of that size is allocated: a
//! picture's pixels, an IDX file's sample count, a checkpoint's header, tensor count and layer widths,
//! and the memory a model needs (from `--hidden` or a checkpoint). Each refusal names its limit and,
//! where raising it makes sense, how. Tested by tests/bombs.rs and tests/limits.rs.

use anyhow::{Result, bail};

use crate::error::Hinted;

/// The largest picture decoded: 40 megapixels (a 7296x5472 camera photo), about 160 MB as RGBA.
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// The most a picture's decoder may allocate (its output included): 40 MP of RGBA, 8 bits a channel.
pub const MAX_DECODE_BYTES: u64 = 4 * MAX_IMAGE_PIXELS;
/// The largest picture file read: a 40 MP photo is far smaller, even as an uncompressed BMP.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// The most samples one IDX file may declare: four times Fashion-MNIST's training set (188 MB of
/// 28x28 images).
pub const MAX_IDX_SAMPLES: u64 = 240_000;

/// The largest safetensors header (its JSON): thousands of epochs of history fit in far less.
pub const MAX_HEADER_BYTES: u64 = 4 << 20;
/// The most hidden layers a model may have (`--hidden` or a checkpoint).
pub const MAX_HIDDEN_LAYERS: usize = 64;
/// The widest hidden layer (`--hidden` or a checkpoint).
pub const MAX_WIDTH: usize = 65_536;
/// The most tensors a checkpoint may list: weight and bias of every layer, and Adam's two moments.
pub const MAX_TENSORS: usize = 6 * (MAX_HIDDEN_LAYERS + 1);

/// The memory budget of a model when `FMNIST_MEMORY_BUDGET` is not set: 2 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 2 << 30;
/// The environment variable that raises (or lowers) the model memory budget, e.g. `8G`.
pub const BUDGET_VAR: &str = "FMNIST_MEMORY_BUDGET";

/// The memory budget for a model's parameters, optimizer state and activations: `$FMNIST_MEMORY_BUDGET`
/// (bytes, or with a K, M, G or T suffix, powers of 1024) or 2 GiB.
pub fn memory_budget() -> Result<u64> {
    match std::env::var(BUDGET_VAR) {
        Ok(v) => parse_bytes(&v).ok_or_else(|| {
            anyhow::anyhow!(
                "{BUDGET_VAR}={v}: expected a size in bytes such as 4G, 512M or 1000000"
            )
        }),
        Err(_) => Ok(DEFAULT_MEMORY_BUDGET),
    }
}

/// `4G`, `512M`, `1000000` -> bytes (K, M, G, T are powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        (i, 't' | 'T') => (&s[..i], 40),
        _ => (s, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift).filter(|&b| b > 0)
}

/// A size for people, in the binary units `FMNIST_MEMORY_BUDGET` takes: `64.8 GiB`, `310 MiB`, `12 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.0} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.0} MiB", b / 1_048_576.0),
        _ => format!("{:.1} GiB", b / 1_073_741_824.0),
    }
}

/// Refuses `needed` bytes for `what` when they exceed the memory budget, naming both and how to raise it.
pub fn check_budget(needed: u64, what: &str, smaller: &str) -> Result<()> {
    let budget = memory_budget()?;
    if needed <= budget {
        return Ok(());
    }
    let raise = parse_bytes_hint(needed);
    Err(anyhow::Error::new(Hinted::new(
        anyhow::anyhow!(
            "{what} needs about {} of memory (parameters, Adam's state and activations), more than the budget of {} ({BUDGET_VAR})",
            human_bytes(needed),
            human_bytes(budget)
        ),
        format!(
            "{smaller}; or raise the budget, e.g. {BUDGET_VAR}={raise}, when the machine has that much free memory"
        ),
    )))
}

/// The smallest whole number of GiB (or MiB) that holds `bytes`, as `FMNIST_MEMORY_BUDGET` takes it.
fn parse_bytes_hint(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{}G", bytes.div_ceil(1 << 30))
    } else {
        format!("{}M", bytes.div_ceil(1 << 20))
    }
}

/// Refuses a layer list longer or wider than fmnist supports.
pub fn check_layers(hidden: &[usize]) -> Result<()> {
    if hidden.len() > MAX_HIDDEN_LAYERS {
        bail!(
            "{} hidden layers; fmnist supports at most {MAX_HIDDEN_LAYERS}",
            hidden.len()
        );
    }
    if let Some(&w) = hidden.iter().find(|&&w| w > MAX_WIDTH) {
        bail!("a hidden layer of {w} units; fmnist supports at most {MAX_WIDTH} per layer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_suffixes() {
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes(" 1000 "), Some(1000));
        assert_eq!(parse_bytes("2T"), Some(2 << 40));
        for bad in ["", "G", "-1G", "0", "1.5G", "99999999999T"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(human_bytes(69_600_000_000), "64.8 GiB");
        assert_eq!(human_bytes(2 << 30), "2.0 GiB");
        assert_eq!(parse_bytes_hint(69_600_000_000), "65G");
    }
}
