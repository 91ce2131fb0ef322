//! Keras' `model.summary()` for an MLP: the layer table (name and type, output shape, parameter count)
//! and the total, trainable and non-trainable parameters with their size in memory, drawn as Keras 3
//! draws it. Used by `fmnist summary`. Tested below (the tutorial's model gives Keras' own numbers) and
//! by tests/cli.rs.

use crate::model::MlpSpec;

/// One row of the table.
struct Row {
    layer: String,
    shape: String,
    params: usize,
}

/// The table and totals for `spec`, titled `name` (Keras' "sequential").
pub fn summary(spec: &MlpSpec, name: &str) -> String {
    let mut rows = vec![Row {
        layer: "flatten (Flatten)".into(),
        shape: format!("(None, {})", spec.inputs),
        params: 0,
    }];
    let mut fan_in = spec.inputs;
    let widths = spec.hidden.iter().chain(std::iter::once(&spec.outputs));
    for (i, &units) in widths.enumerate() {
        let suffix = if i == 0 {
            String::new()
        } else {
            format!("_{i}")
        };
        rows.push(Row {
            layer: format!("dense{suffix} (Dense)"),
            shape: format!("(None, {units})"),
            params: fan_in * units + units,
        });
        fan_in = units;
    }
    let total: usize = rows.iter().map(|r| r.params).sum();
    let w = [
        rows.iter()
            .map(|r| r.layer.chars().count())
            .max()
            .unwrap_or(0)
            .max(31)
            + 2,
        rows.iter()
            .map(|r| r.shape.len())
            .max()
            .unwrap_or(0)
            .max(22)
            + 2,
        rows.iter()
            .map(|r| grouped(r.params).len())
            .max()
            .unwrap_or(0)
            .max(13)
            + 2,
    ];
    let rule = |l: &str, fill: &str, mid: &str, r: &str| {
        let cells: Vec<String> = w.iter().map(|&n| fill.repeat(n)).collect();
        format!("{l}{}{r}\n", cells.join(mid))
    };
    let line = |edge: &str, a: &str, b: &str, c: &str| {
        format!(
            "{edge} {a:<w0$} {edge} {b:<w1$} {edge} {c:>w2$} {edge}\n",
            w0 = w[0] - 2,
            w1 = w[1] - 2,
            w2 = w[2] - 2
        )
    };
    let mut s = format!("Model: \"{name}\"\n");
    s += &rule("┏", "━", "┳", "┓");
    s += &line("┃", "Layer (type)", "Output Shape", "Param #");
    s += &rule("┡", "━", "╇", "┩");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            s += &rule("├", "─", "┼", "┤");
        }
        s += &line("│", &r.layer, &r.shape, &grouped(r.params));
    }
    s += &rule("└", "─", "┴", "┘");
    let bytes = |n: usize| memory_size((n * 4) as f64);
    s += &format!(" Total params: {} ({})\n", grouped(total), bytes(total));
    s += &format!(" Trainable params: {} ({})\n", grouped(total), bytes(total));
    s += &format!(" Non-trainable params: 0 ({})\n", bytes(0));
    s
}

/// `n` with thousands separated by commas, as Keras prints counts.
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in Keras' form: two decimals and the largest unit (of 1024) that keeps the figure at least 1.
pub fn memory_size(bytes: f64) -> String {
    let mut size = bytes;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorial_model_has_keras_numbers() {
        let s = summary(&MlpSpec::fashion(&[128]).unwrap(), "sequential");
        let want = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ flatten (Flatten)               │ (None, 784)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 128)            │       100,480 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 101,770 (397.54 KB)
 Trainable params: 101,770 (397.54 KB)
 Non-trainable params: 0 (0.00 B)
";
        assert_eq!(s, want, "\n{s}");
    }

    #[test]
    fn deeper_models_number_their_dense_layers_and_count_every_parameter() {
        let spec = MlpSpec::fashion(&[256, 64]).unwrap();
        let s = summary(&spec, "m");
        assert!(s.contains("│ dense_2 (Dense)"), "{s}");
        let total = 784 * 256 + 256 + 256 * 64 + 64 + 64 * 10 + 10;
        assert!(s.contains("Total params: 218,058 ("), "{s}");
        let layers: usize = spec
            .layout()
            .layers
            .iter()
            .map(|l| l.fan_in * l.fan_out + l.fan_out)
            .sum();
        assert_eq!(layers, total);
    }

    #[test]
    fn counts_and_sizes_read_as_keras_writes_them() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(memory_size(0.0), "0.00 B");
        assert_eq!(memory_size(1023.0), "1023.00 B");
        assert_eq!(memory_size(407_080.0), "397.54 KB");
        assert_eq!(memory_size(3.0 * 1024.0 * 1024.0), "3.00 MB");
    }
}
