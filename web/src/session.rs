//! A page's state and what it does with it: the splits it loaded, the model it trained or loaded, and
//! the GPU engine holding that model. Every GPU call is awaited (WebGPU cannot block), and one runs
//! at a time: the engine is taken out while it works, and a second call is refused with a message.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use web_time::Instant;

use fmnist::backend::Backend;
use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::cpu::{self, Dropout};
use fmnist::data::{self, ClassNames, NUM_CLASSES, Split};
use fmnist::evaluate::evaluate_gpu_async;
use fmnist::gpu::{GpuBackend, GpuContext};
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::train::{FitData, FitEnd, FitPosition, fit_engine};

use crate::events::{PageProgress, StopFlag};
use crate::options::WebOptions;
use crate::reports::{AdapterReport, EpochRow, ModelReport, PhotoReport, TestReport, TrainReport};

/// What the error says when the GPU cannot hold the engine's buffers.
const ADVICE: &str = "use smaller hidden layers or a smaller batch";

/// The page's trainer.
#[derive(Default)]
pub struct State {
    train: RefCell<Option<Arc<Split>>>,
    test: RefCell<Option<Arc<Split>>>,
    model: RefCell<Option<Model>>,
    /// The engine holding `model`'s weights, once one was opened; taken out while it works.
    engine: RefCell<Option<GpuBackend>>,
    busy: Cell<bool>,
    stop: Cell<bool>,
}

/// A trained or loaded model, as a file holds it.
struct Model {
    spec: MlpSpec,
    params: Vec<f32>,
    meta: CheckpointMeta,
}

impl Model {
    fn report(&self) -> ModelReport {
        ModelReport {
            layers: self.spec.describe(),
            parameters: self.spec.parameter_count(),
            epochs: self.meta.epochs,
            steps: self.meta.steps,
            class_names: self.meta.class_names.iter().map(str::to_string).collect(),
        }
    }
}

/// Marks the trainer busy until dropped.
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl State {
    fn begin(&self, what: &str) -> Result<Busy<'_>> {
        if self.busy.replace(true) {
            bail!(
                "cannot {what} now: the GPU is busy with the last request (wait for it, or press Stop)"
            );
        }
        Ok(Busy(&self.busy))
    }

    /// Where split `which` ("train" or "test") is kept.
    fn slot(&self, which: &str) -> Result<&RefCell<Option<Arc<Split>>>> {
        match which {
            "train" => Ok(&self.train),
            "test" => Ok(&self.test),
            other => bail!("no split named {other:?} (train or test)"),
        }
    }

    fn split(&self, which: &str) -> Result<Arc<Split>> {
        self.slot(which)?
            .borrow()
            .clone()
            .with_context(|| format!("the {which} images are not loaded yet"))
    }

    pub fn load_split(
        &self,
        which: &str,
        images_name: &str,
        images: &[u8],
        labels_name: &str,
        labels: &[u8],
    ) -> Result<usize> {
        let slot = self.slot(which)?;
        let split = data::split_from_bytes(images_name, images, labels_name, labels)?;
        ensure!(!split.is_empty(), "{images_name}: the file holds no images");
        let n = split.len();
        *slot.borrow_mut() = Some(Arc::new(split));
        Ok(n)
    }

    pub fn image(&self, which: &str, index: usize) -> Result<Vec<u8>> {
        let split = self.split(which)?;
        ensure!(
            index < split.len(),
            "no {which} image {index} (the split has {})",
            split.len()
        );
        Ok(split.image(index).to_vec())
    }

    pub fn label(&self, which: &str, index: usize) -> Result<u8> {
        let split = self.split(which)?;
        ensure!(
            index < split.len(),
            "no {which} label {index} (the split has {})",
            split.len()
        );
        Ok(split.labels[index])
    }

    pub fn class_names(&self) -> Vec<String> {
        let model = self.model.borrow();
        let names = model
            .as_ref()
            .map_or_else(ClassNames::default, |m| m.meta.class_names.clone());
        names.iter().map(str::to_string).collect()
    }

    pub fn request_stop(&self) {
        self.stop.set(true);
    }

    pub async fn adapter(&self) -> Result<AdapterReport> {
        let ctx = GpuContext::open_async(None, Default::default(), ADVICE).await?;
        Ok(AdapterReport {
            adapter: ctx.adapter.describe(),
        })
    }

    pub async fn train(&self, options: &str, on_event: js_sys::Function) -> Result<TrainReport> {
        let _busy = self.begin("train")?;
        self.stop.set(false);
        let cfg = WebOptions::parse(options)?.config()?;
        let mut train = self.split("train")?;
        let test = self.split("test")?;
        let validation = match cfg.validation_split {
            Some(f) => {
                let (kept, held) = (*train).clone().split_validation(f)?;
                train = Arc::new(kept);
                Some(Arc::new(held))
            }
            None => None,
        };
        let spec = MlpSpec::fashion(&cfg.hidden)?;
        let params = glorot_init(&spec, cfg.seed);
        let needs = GpuBackend::needs(&spec, cfg.batch_size);
        let ctx = GpuContext::open_async(None, needs, ADVICE).await?;
        let mut engine =
            GpuBackend::with_context(ctx, spec.clone(), params, cfg.optimizer, cfg.batch_size)?;
        engine.set_dropout(&Dropout::new(&cfg.dropout_rates()?, cfg.seed))?;
        // The page's earlier model (trained or loaded) stays until this run ends with weights: a run
        // that fails (a diverging loss, a lost device) leaves it as it was.
        let data = FitData {
            train: &train,
            validation: validation.as_ref(),
            test: &test,
        };
        let mut progress = PageProgress::new(on_event);
        let mut hooks = StopFlag(&self.stop);
        let outcome = fit_engine(
            &mut engine,
            data,
            &cfg,
            &mut progress,
            FitPosition::default(),
            &mut hooks,
        )
        .await?;
        let end = match outcome.end {
            FitEnd::Finished => "finished",
            FitEnd::StoppedEarly => "stopped early",
            FitEnd::Interrupted => "stopped",
            FitEnd::Diverged(err) => return Err(err),
        };
        let params = engine.params_async().await?;
        let model = Model {
            spec,
            params,
            meta: CheckpointMeta {
                epochs: Some(outcome.position.epoch),
                seed: Some(cfg.seed),
                steps: Some(outcome.steps),
                class_names: ClassNames::default(),
            },
        };
        let report = TrainReport {
            history: outcome
                .position
                .history
                .iter()
                .map(EpochRow::from)
                .collect(),
            end,
            steps: outcome.steps,
            model: model.report(),
            adapter: engine.device_name(),
        };
        *self.model.borrow_mut() = Some(model);
        *self.engine.borrow_mut() = Some(engine);
        Ok(report)
    }

    /// The engine holding the model: the one that trained it, or a new one for a loaded model.
    async fn take_engine(&self) -> Result<GpuBackend> {
        if let Some(engine) = self.engine.borrow_mut().take() {
            return Ok(engine);
        }
        let (spec, params) = match self.model.borrow().as_ref() {
            Some(m) => (m.spec.clone(), m.params.clone()),
            None => bail!("there is no model yet: train one, or load a model file"),
        };
        let batch = fmnist::config::TrainConfig::default().batch_size;
        let ctx = GpuContext::open_async(None, GpuBackend::needs(&spec, batch), ADVICE).await?;
        let optimizer = fmnist::config::OptimizerConfig::default();
        GpuBackend::with_context(ctx, spec, params, optimizer, batch)
    }

    pub async fn evaluate(&self) -> Result<TestReport> {
        let _busy = self.begin("evaluate")?;
        let test = self.split("test")?;
        let mut engine = self.take_engine().await?;
        let started = Instant::now();
        let eval = evaluate_gpu_async(&mut engine, &test).await;
        let seconds = started.elapsed().as_secs_f64();
        *self.engine.borrow_mut() = Some(engine);
        Ok(TestReport::of(&eval?, seconds))
    }

    pub async fn predict_photo(&self, bytes: &[u8]) -> Result<PhotoReport> {
        let _busy = self.begin("predict")?;
        let photo = fmnist::photo::from_bytes(bytes)?;
        let mut engine = self.take_engine().await?;
        let mut logits = vec![0.0f32; NUM_CLASSES];
        let done = engine.logits_async(&photo.input(), 1, &mut logits).await;
        *self.engine.borrow_mut() = Some(engine);
        done?;
        let mut probabilities = vec![0.0f32; NUM_CLASSES];
        cpu::softmax(&logits, &mut probabilities, 1, NUM_CLASSES);
        Ok(PhotoReport {
            predicted: fmnist::evaluate::argmax(&probabilities),
            probabilities,
            pixels: photo.pixels,
            inverted: photo.inverted,
            warnings: photo.warnings,
        })
    }

    pub fn model_file(&self) -> Result<Vec<u8>> {
        let model = self.model.borrow();
        let Some(m) = model.as_ref() else {
            bail!("there is no model to save yet: train one first");
        };
        Ok(checkpoint::to_bytes(&m.spec, &m.params, &m.meta))
    }

    pub fn load_model(&self, name: &str, bytes: &[u8]) -> Result<ModelReport> {
        let _busy = self.begin("load a model")?;
        let limit = 8 + fmnist::limits::MAX_HEADER_BYTES + fmnist::limits::memory_budget()?;
        ensure!(
            bytes.len() as u64 <= limit,
            "{name}: {} is larger than any model fmnist reads ({})",
            fmnist::limits::human_bytes(bytes.len() as u64),
            fmnist::limits::human_bytes(limit)
        );
        // `parse` checks the layers chain from 28x28 inputs to 10 classes.
        let ck = checkpoint::parse(bytes)
            .with_context(|| format!("{name}: not a usable fmnist checkpoint"))?;
        let model = Model {
            spec: ck.spec,
            params: ck.params,
            meta: ck.meta,
        };
        let report = model.report();
        *self.engine.borrow_mut() = None;
        *self.model.borrow_mut() = Some(model);
        Ok(report)
    }
}
