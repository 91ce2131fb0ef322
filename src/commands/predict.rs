//! `fmnist predict`: class probabilities of test images (`--index`, `--grid RxC`, or all of them into
//! a .csv or .npy file with `--all --output`) and of a person's own image files, as text, JSON lines
//! (`--json`) or figures (`--plot`). A file that cannot be read is
//! reported on its own line and the others are still predicted; the exit code says something failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use fmnist::batches::normalise_range;
use fmnist::checkpoint;
use fmnist::data::{ClassNames, NUM_CLASSES, PIXELS, Split};
use fmnist::error::HintExt;
use fmnist::evaluate::{argmax, evaluate, predict};
use fmnist::photo::{self, Photo};
use fmnist::plot::{Figure, predictions};
use fmnist::predictions::PredictionFormat;
use serde::Serialize;
use serde::ser::SerializeMap;

use super::{DataArgs, DeviceArgs};
use fmnist::{errln, outln};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by `fmnist train` (model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Image files of garments (PNG, JPEG, GIF, BMP, WebP, TIFF, ...), preprocessed like Fashion-MNIST.
    #[arg(value_name = "IMAGE")]
    pub files: Vec<PathBuf>,
    /// Test image to classify; repeat for several (default: 0 when no file is given).
    #[arg(long = "index", value_name = "I")]
    pub indices: Vec<usize>,
    /// The first ROWS*COLS test images, e.g. 5x3; with --plot, drawn as one figure.
    #[arg(long, value_name = "ROWSxCOLS", value_parser = parse_grid, conflicts_with_all = ["indices", "files"])]
    pub grid: Option<(usize, usize)>,
    /// Draw each prediction (image beside its probability bars) as a PNG.
    #[arg(long)]
    pub plot: bool,
    /// With --plot: draw only the probability chart, with the class names under the bars.
    #[arg(long, requires = "plot")]
    pub bars_only: bool,
    /// With --plot and a single figure: the PNG file to write (default: a name from the input).
    #[arg(long, value_name = "FILE", requires = "plot")]
    pub out: Option<PathBuf>,
    /// One JSON object per input per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The whole test set at once, written to --output (like Keras' model.predict(test_images)).
    #[arg(long, requires = "output", conflicts_with_all = ["indices", "files", "grid", "plot", "json"])]
    pub all: bool,
    /// With --all: the file to write, .csv (index, label, predicted, one column per class) or .npy
    /// (float32 [n, 10] for numpy.load).
    #[arg(long, value_name = "FILE", requires = "all")]
    pub output: Option<PathBuf>,
    /// With --all: replace --output when it exists (refused otherwise).
    #[arg(long, requires = "all")]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--all --output FILE`: every test image's probabilities, in the format the file name says; an
/// existing file is kept unless `--overwrite` (checked before any work, and the file is written
/// atomically).
fn predict_all(args: &PredictArgs, output: &Path) -> Result<ExitCode> {
    let format = PredictionFormat::of(output)?;
    if !args.overwrite && std::fs::symlink_metadata(output).is_ok() {
        return Err(anyhow::anyhow!("{}: already exists", output.display()))
            .hint("pass --overwrite to replace it, or name another file");
    }
    let ck = checkpoint::load(&args.model)?;
    let names = ck.meta.class_names.clone();
    let test = args.data.load_test()?;
    let mut backend = args.device.inference_backend(ck)?;
    outln!("Device: {}", backend.device_name());
    let eval = evaluate(backend.as_mut(), &test)?;
    fmnist::atomic::write_atomic(output, &format.encode(&eval, &names.as_strs()))?;
    outln!(
        "Wrote the probabilities of {} test images to {} (test accuracy {:.4})",
        eval.len(),
        output.display(),
        eval.accuracy
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_grid(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected ROWSxCOLS, e.g. 5x3");
    let (r, c) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (r, c): (usize, usize) = (
        r.trim().parse().map_err(|_| bad())?,
        c.trim().parse().map_err(|_| bad())?,
    );
    if r == 0 || c == 0 || r.checked_mul(c).is_none_or(|n| n > 100) {
        return Err(format!("`{s}`: between 1 and 100 images (e.g. 5x3)"));
    }
    Ok((r, c))
}

/// What is being classified.
enum Input {
    Test(usize),
    File(PathBuf, Result<Photo>),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Test(i) => format!("test:{i}"),
            Input::File(p, _) => p.display().to_string(),
        }
    }
}

pub fn run(args: PredictArgs) -> Result<ExitCode> {
    if let (true, Some(output)) = (args.all, &args.output) {
        return predict_all(&args, output);
    }
    let ck = checkpoint::load(&args.model)?;
    let class_names = ck.meta.class_names.clone();
    let mut indices = args.indices.clone();
    if let Some((r, c)) = args.grid {
        indices = (0..r * c).collect();
    } else if indices.is_empty() && args.files.is_empty() {
        indices.push(0);
    }
    let figures = match (args.plot, args.grid) {
        (false, _) => 0,
        (true, Some(_)) => 1,
        (true, None) => indices.len() + args.files.len(),
    };
    if args.out.is_some() && figures > 1 {
        return Err(anyhow::anyhow!(
            "--out names one file but {figures} figures would be drawn"
        ))
        .hint("drop --out to use names made from the inputs, or predict one input at a time");
    }
    let test = test_split_for(&args, &indices)?;
    let inputs: Vec<Input> = indices
        .iter()
        .map(|&i| Input::Test(i))
        .chain(
            args.files
                .iter()
                .map(|p| Input::File(p.clone(), photo::load(p))),
        )
        .collect();

    let x = input_batch(&inputs, test.as_ref());
    let rows = x.len() / PIXELS;
    let probs = if rows == 0 {
        Vec::new()
    } else {
        let mut backend = args.device.inference_backend(ck)?;
        predict(backend.as_mut(), &x, rows)?
    };

    let names = figure_names(&inputs, args.bars_only);
    let mut failed = 0;
    let mut row = 0;
    let mut grid_probs = Vec::new();
    for (input, default) in inputs.iter().zip(&names) {
        let (p, truth, pixels): (&[f32], Option<usize>, &[u8]) = match input {
            Input::File(_, Err(e)) => {
                failed += 1;
                let line = fmnist::error::one_line(e);
                if args.json {
                    outln!(
                        "{}",
                        serde_json::json!({"input": input.name(), "error": line})
                    );
                } else {
                    errln!("error: {line}");
                    if let Some(hint) = fmnist::error::hint_of(e) {
                        errln!("hint: {hint}");
                    }
                }
                continue;
            }
            Input::Test(i) => {
                let test = test.as_ref().expect("loaded for indices");
                (
                    &probs[row * NUM_CLASSES..(row + 1) * NUM_CLASSES],
                    Some(test.labels[*i] as usize),
                    test.image(*i),
                )
            }
            Input::File(_, Ok(photo)) => (
                &probs[row * NUM_CLASSES..(row + 1) * NUM_CLASSES],
                None,
                &photo.pixels[..],
            ),
        };
        row += 1;
        if args.json {
            outln!(
                "{}",
                serde_json::to_string(&JsonPrediction::new(input, p, truth, &class_names))?
            );
        } else {
            print_text(input, p, truth, &class_names);
            if let Input::File(path, Ok(photo)) = input {
                for w in &photo.warnings {
                    errln!("warning: {}: {w}", path.display());
                }
            }
        }
        if args.plot {
            if args.grid.is_some() {
                grid_probs.extend_from_slice(p);
                continue;
            }
            let figure = match (input, args.bars_only) {
                (_, true) => predictions::chart(p, truth, &class_names)?,
                (Input::Test(_), false) => {
                    predictions::single(pixels, p, truth.expect("test label"), &class_names)?
                }
                (Input::File(path, _), false) => {
                    // The file name, not the whole path: it must fit under a 250-pixel image.
                    let name = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    predictions::photo(pixels, p, &name, &class_names)?
                }
            };
            save(&figure, args.out.as_deref().unwrap_or(default), args.json)?;
        }
    }
    if let (true, Some((r, c)), Some(test)) = (args.plot, args.grid, test.as_ref()) {
        let images: Vec<&[u8]> = indices.iter().map(|&i| test.image(i)).collect();
        let figure = predictions::grid(&images, &grid_probs, &test.labels, r, c, &class_names)?;
        let default = PathBuf::from(format!("predictions-{r}x{c}.png"));
        save(&figure, args.out.as_deref().unwrap_or(&default), args.json)?;
    }
    if failed > 0 {
        if !args.json {
            errln!("{failed} of {} inputs could not be predicted", inputs.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The default figure file of every input: a name made from the input, with `-2`, `-3`, ... added where
/// two inputs would give the same one (`a/shoe.png` and `b/shoe.jpg`), so no figure overwrites another.
fn figure_names(inputs: &[Input], bars_only: bool) -> Vec<PathBuf> {
    let mut taken = std::collections::HashSet::new();
    inputs
        .iter()
        .map(|input| {
            let base = default_figure_name(input, bars_only);
            let stem = base.with_extension("");
            let mut name = base.clone();
            for n in 2.. {
                if taken.insert(name.clone()) {
                    break;
                }
                name = PathBuf::from(format!("{}-{n}.png", stem.display()));
            }
            name
        })
        .collect()
}

fn default_figure_name(input: &Input, bars_only: bool) -> PathBuf {
    let kind = if bars_only { "chart" } else { "prediction" };
    match input {
        Input::Test(i) => PathBuf::from(format!("{kind}-test-{i}.png")),
        Input::File(p, _) => {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            PathBuf::from(format!("{kind}-{stem}.png"))
        }
    }
}

/// Saves a figure and says where; on stderr in JSON mode so stdout stays one object per line.
fn save(figure: &Figure, path: &Path, json: bool) -> Result<()> {
    figure.save(path)?;
    if json {
        errln!("Figure saved to {}", path.display());
    } else {
        outln!("Figure saved to {}", path.display());
    }
    Ok(())
}

fn print_text(input: &Input, p: &[f32], truth: Option<usize>, names: &ClassNames) {
    let pred = argmax(p);
    match (input, truth) {
        (Input::Test(i), Some(label)) => {
            outln!("Test image {i} (true: {})", names.get(label));
            for (c, name) in names.iter().enumerate() {
                outln!(
                    "  {name:<12} {:>7.2}%{}",
                    100.0 * p[c],
                    if c == pred { "  <-" } else { "" }
                );
            }
            outln!(
                "  Predicted: {} {:.0}% ({})",
                names.get(pred),
                100.0 * p[pred],
                if pred == label { "right" } else { "wrong" }
            );
        }
        (Input::File(path, Ok(photo)), _) => {
            let (w, h) = photo.source_size;
            outln!(
                "{} ({w}x{h}{})",
                path.display(),
                if photo.inverted {
                    ", light background: inverted"
                } else {
                    ""
                }
            );
            let mut order: Vec<usize> = (0..NUM_CLASSES).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
            for (rank, &c) in order.iter().take(3).enumerate() {
                outln!(
                    "  {}. {:<12} {:>7.2}%",
                    rank + 1,
                    names.get(c),
                    100.0 * p[c]
                );
            }
        }
        _ => {}
    }
}

/// One `--json` line.
#[derive(Serialize)]
struct JsonPrediction {
    input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    predicted: String,
    predicted_index: usize,
    confidence: f32,
    probabilities: ClassProbabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<bool>,
    /// Why the prediction is doubtful (a truncated file, no garment found), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

impl JsonPrediction {
    fn new(input: &Input, p: &[f32], truth: Option<usize>, names: &ClassNames) -> Self {
        let pred = argmax(p);
        JsonPrediction {
            input: input.name(),
            index: match input {
                Input::Test(i) => Some(*i),
                Input::File(..) => None,
            },
            predicted: names.get(pred).to_string(),
            predicted_index: pred,
            confidence: p[pred],
            probabilities: ClassProbabilities(p.to_vec(), names.clone()),
            label: truth.map(|t| names.get(t).to_string()),
            label_index: truth,
            correct: truth.map(|t| t == pred),
            warning: match input {
                Input::File(_, Ok(photo)) if !photo.warnings.is_empty() => {
                    Some(photo.warnings.join("; "))
                }
                _ => None,
            },
        }
    }
}

/// `{"T-shirt/top": p0, ...}` in class order (a plain map would sort the names).
struct ClassProbabilities(Vec<f32>, ClassNames);

impl Serialize for ClassProbabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, p) in self.1.iter().zip(&self.0) {
            map.serialize_entry(name, p)?;
        }
        map.end()
    }
}

/// The test split, loaded only when test images are asked for (photos work without it), with every
/// index checked against it.
fn test_split_for(args: &PredictArgs, indices: &[usize]) -> Result<Option<Arc<Split>>> {
    if indices.is_empty() {
        return Ok(None);
    }
    let test = args.data.load_test()?;
    if let Some(bad) = indices.iter().find(|&&i| i >= test.len()) {
        match test.len() {
            0 => bail!("--index {bad}: the test set is empty"),
            n => bail!("--index {bad}: the test set has {n} images (0-{})", n - 1),
        }
    }
    Ok(Some(test))
}

/// One batch `(rows, 784)` of every readable input, normalised, in input order.
fn input_batch(inputs: &[Input], test: Option<&Arc<Split>>) -> Vec<f32> {
    let mut x = Vec::with_capacity(inputs.len() * PIXELS);
    for input in inputs {
        match input {
            Input::Test(i) => {
                let start = x.len();
                x.resize(start + PIXELS, 0.0);
                normalise_range(test.expect("loaded for indices"), *i, 1, &mut x[start..]);
            }
            Input::File(_, Ok(photo)) => x.extend(photo.input()),
            Input::File(_, Err(_)) => {}
        }
    }
    x
}
