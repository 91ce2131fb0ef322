//! Subcommands: flag definitions (clap derive) and the code that prints their results.

mod bench;
mod evaluate;
mod export;
mod info;
mod plot;
mod predict;
mod profile;
mod report;
mod resume;
mod selftest;
mod session;
mod show;
mod summary;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use fmnist::backend::Backend;
use fmnist::checkpoint::Checkpoint;
use fmnist::config::OptimizerConfig;
use fmnist::data::{self, ClassNames, Split};
use fmnist::device::{AdapterChoice, DeviceChoice, make_backend};

#[derive(Parser, Debug)]
#[command(
    name = "fmnist",
    version,
    about = "Fashion-MNIST training engine: Keras' tutorial as one native program, on any GPU or the CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train Flatten -> Dense(128, ReLU) -> Dense(10) with Adam, evaluating on the test set every epoch.
    Train(train::TrainArgs),
    /// Test-set loss and accuracy of a saved model.
    Evaluate(evaluate::EvaluateArgs),
    /// Class probabilities of test images under a saved model.
    Predict(predict::PredictArgs),
    /// Where the data is, its shapes and class counts, and the devices available.
    Info(info::InfoArgs),
    /// Draw dataset images: one with a colour bar (--index) or a grid with class names (--grid N).
    Show(show::ShowArgs),
    /// Redraw a run's figures (history, confusion matrix, predictions, mistakes) from its folder.
    Plot(plot::PlotArgs),
    /// Time every GPU kernel over N training steps (per-kernel table and host-side costs).
    Profile(profile::ProfileArgs),
    /// Check every GPU kernel against its CPU twin, then one training step GPU vs CPU.
    Selftest(selftest::SelftestArgs),
    /// The same training on the CPU path and the GPU engine side by side, then the GPU kernel profile.
    Bench(bench::BenchArgs),
    /// Keras' model.summary(): layers, output shapes and parameter counts of a model.
    Summary(summary::SummaryArgs),
    /// A saved model as an ONNX file (MatMul/Add/Relu/Softmax) for any ONNX runtime.
    Export(export::ExportArgs),
}

/// `--data-dir`, shared by every command that reads the dataset.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Folder holding the four Fashion-MNIST IDX files (.gz or plain); searched for when omitted.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--device` and `--adapter`, shared by every command that computes.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Where to compute [default: auto; for `train --resume`, the run's own].
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Pick the GPU adapter whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    /// `--device`, `auto` when not given.
    pub fn choice(&self) -> DeviceChoice {
        self.device.unwrap_or(DeviceChoice::Auto)
    }

    pub fn adapter_choice(&self) -> AdapterChoice {
        AdapterChoice {
            name: self.adapter.clone(),
        }
    }

    /// A backend on the chosen device that evaluates and predicts with a loaded model.
    pub fn inference_backend(&self, ck: Checkpoint) -> Result<Box<dyn Backend>> {
        make_backend(
            self.choice(),
            &self.adapter_choice(),
            ck.spec,
            ck.params,
            OptimizerConfig::default(),
            1,
        )
    }
}

impl DataArgs {
    /// The test split, from the folder `--data-dir` names or the search order.
    pub fn load_test(&self) -> Result<Arc<Split>> {
        let location = data::locate(self.data_dir.as_deref())?;
        data::load_test(&location.dir)
            .map(Arc::new)
            .with_context(|| format!("loading the test set from {}", location.dir.display()))
    }
}

/// The classes' names for data in `dir`: `--class-names` when given, else `class_names.txt` beside the
/// files, else Fashion-MNIST's.
pub fn class_names(given: Option<&str>, dir: &std::path::Path) -> Result<ClassNames> {
    match given {
        Some(list) => ClassNames::from_list(list).context("--class-names"),
        None => Ok(ClassNames::beside(dir)?.unwrap_or_default()),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Info(a) => info::run(a),
        Command::Show(a) => show::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Selftest(a) => selftest::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Export(a) => export::run(a),
    }
}
