//! fmnist in a web page: the library's GPU engine compiled to WebAssembly, training on the visitor's
//! GPU through WebGPU with the very WGSL kernels of `shaders/`. The page (`web/www`) hands a `Trainer`
//! the IDX files' bytes, the training options and a callback for progress, and draws the JSON it gets
//! back. The model downloads as the same safetensors file the CLI reads, and a CLI model loads here.
//! Tested in headless Chromium: tests/selftest.rs (every kernel against its CPU twin) and
//! e2e/train.mjs (the page end to end, its model checked by `fmnist evaluate`).

mod events;
mod options;
mod reports;
mod session;

use std::future::Future;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use session::State;

/// Panics reach the browser's console with their message instead of "unreachable executed".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// An error as the page shows it: the CLI's one line, then the hint when the library gives one.
fn js_error(err: anyhow::Error) -> JsValue {
    let mut text = fmnist::error::one_line(&err);
    if let Some(hint) = fmnist::error::hint_of(&err) {
        text += &format!("\nhint: {hint}");
    }
    JsError::new(&text).into()
}

/// A report as the JSON text the page parses.
fn json(report: &impl Serialize) -> Result<JsValue, JsValue> {
    serde_json::to_string(report)
        .map(|s| JsValue::from_str(&s))
        .map_err(|e| js_error(e.into()))
}

/// `work` as a promise of its report's JSON.
fn promise<R: Serialize>(
    work: impl Future<Output = anyhow::Result<R>> + 'static,
) -> js_sys::Promise {
    future_to_promise(async move { json(&work.await.map_err(js_error)?) })
}

/// One page's data, model and GPU engine. Its methods that touch the GPU return promises; one runs at
/// a time (a second is refused with a message until the first settles), except `stop`.
#[wasm_bindgen]
pub struct Trainer {
    state: Rc<State>,
}

impl Default for Trainer {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Trainer {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Trainer {
        Trainer {
            state: Rc::new(State::default()),
        }
    }

    /// Reads one split, `"train"` or `"test"`, from its two IDX files (gzip-compressed or not, told by
    /// their content), named in errors as given. Returns the number of images.
    pub fn load_split(
        &self,
        which: &str,
        images_name: &str,
        images: &[u8],
        labels_name: &str,
        labels: &[u8],
    ) -> Result<usize, JsValue> {
        self.state
            .load_split(which, images_name, images, labels_name, labels)
            .map_err(js_error)
    }

    /// The 784 grey bytes of image `index` of split `which`.
    pub fn image(&self, which: &str, index: usize) -> Result<Vec<u8>, JsValue> {
        self.state.image(which, index).map_err(js_error)
    }

    /// The label of image `index` of split `which`.
    pub fn label(&self, which: &str, index: usize) -> Result<u8, JsValue> {
        self.state.label(which, index).map_err(js_error)
    }

    /// The class names, as JSON: the model's when one is loaded, else Fashion-MNIST's.
    pub fn class_names(&self) -> Result<JsValue, JsValue> {
        json(&self.state.class_names())
    }

    /// Opens the GPU and describes its adapter (JSON `{adapter}`).
    pub fn adapter(&self) -> js_sys::Promise {
        let state = self.state.clone();
        promise(async move { state.adapter().await })
    }

    /// Trains a new model as `options` (JSON, see `options::WebOptions`) say, calling `on_event` with
    /// one JSON argument per progress event. Resolves to the run's history (JSON `TrainReport`).
    pub fn train(&self, options: String, on_event: js_sys::Function) -> js_sys::Promise {
        let state = self.state.clone();
        promise(async move { state.train(&options, on_event).await })
    }

    /// Asks a running `train` to stop after its current step; the weights so far are kept.
    pub fn stop(&self) {
        self.state.request_stop();
    }

    /// Scores the model on the test split (JSON `TestReport`).
    pub fn evaluate(&self) -> js_sys::Promise {
        let state = self.state.clone();
        promise(async move { state.evaluate().await })
    }

    /// Predicts a picture file's class with the CLI's preprocessing (JSON `PhotoReport`).
    pub fn predict_photo(&self, bytes: Vec<u8>) -> js_sys::Promise {
        let state = self.state.clone();
        promise(async move { state.predict_photo(&bytes).await })
    }

    /// The model as the safetensors file `fmnist train` writes.
    pub fn model_file(&self) -> Result<Vec<u8>, JsValue> {
        self.state.model_file().map_err(js_error)
    }

    /// Loads a model file the CLI (or this page) wrote; returns its description (JSON `ModelReport`).
    pub fn load_model(&self, name: &str, bytes: &[u8]) -> Result<JsValue, JsValue> {
        json(&self.state.load_model(name, bytes).map_err(js_error)?)
    }
}
