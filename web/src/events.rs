//! The fit loop's progress and stop requests, bridged to the page: each event becomes one JSON call of
//! the page's callback, and the Stop button sets a flag the loop reads between steps.

use std::cell::Cell;

use wasm_bindgen::JsValue;

use fmnist::metrics::StepStats;
use fmnist::progress::{Progress, epoch_line};
use fmnist::train::{EpochRecord, FitHooks};

use crate::reports::{EpochRow, Event};

/// Calls the page's `on_event(json)` for every epoch start, tick and epoch end.
pub struct PageProgress {
    on_event: js_sys::Function,
    steps: usize,
}

impl PageProgress {
    pub fn new(on_event: js_sys::Function) -> Self {
        Self { on_event, steps: 0 }
    }

    fn send(&self, event: &Event) {
        let text = serde_json::to_string(event).expect("events serialise");
        // A throwing callback is the page's bug; training goes on and the console shows it.
        if let Err(e) = self
            .on_event
            .call1(&JsValue::NULL, &JsValue::from_str(&text))
        {
            console_log(&format!("the progress callback failed: {e:?}"));
        }
    }
}

impl Progress for PageProgress {
    fn live(&self) -> bool {
        true
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.steps = steps;
        self.send(&Event::EpochStart {
            epoch: epoch + 1,
            epochs,
            steps,
        });
    }

    fn tick(&mut self, step: usize, running: &StepStats) {
        self.send(&Event::Tick {
            step,
            steps: self.steps,
            loss: running.mean_loss(),
            accuracy: running.accuracy(),
        });
    }

    fn epoch_end(&mut self, record: &EpochRecord, steps_done: usize, steps_per_epoch: usize) {
        self.send(&Event::EpochEnd {
            record: EpochRow::from(record),
            line: epoch_line(record, steps_done, steps_per_epoch),
        });
    }
}

/// Stops the fit between two steps once the page asked.
pub struct StopFlag<'a>(pub &'a Cell<bool>);

impl FitHooks for StopFlag<'_> {
    fn should_stop(&self) -> bool {
        self.0.get()
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A line on the browser's console.
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(s: &str);
}
