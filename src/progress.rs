//! Keras-style training output: `Epoch 3/10`, then a live bar on a terminal (`412/1875 [=====>   ]
//! ETA 3s - loss: 0.5120 - accuracy: 0.8190`, with metrics from its first draw) or one line per epoch
//! otherwise, ending `1500/1500 - 2.1s - 1ms/step - loss: 0.3012 - accuracy: 0.8891 - val_loss: ...`
//! (the validation and test scores where the epoch evaluated them), which stays on screen in place of
//! the bar. Tested by tests/train_cpu.rs and the unit tests below.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::StepStats;
use crate::outln;
use crate::train::EpochRecord;

/// Receives the fit loop's events.
pub trait Progress {
    /// Whether `tick` is wanted (a live display); otherwise the loop never reads metrics mid-epoch.
    fn live(&self) -> bool;
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize);
    fn tick(&mut self, step: usize, running: &StepStats);
    fn epoch_end(&mut self, record: &EpochRecord, steps_done: usize, steps_per_epoch: usize);
}

/// Prints nothing (tests, benchmarks).
pub struct Silent;

impl Progress for Silent {
    fn live(&self) -> bool {
        false
    }
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn tick(&mut self, _: usize, _: &StepStats) {}
    fn epoch_end(&mut self, _: &EpochRecord, _: usize, _: usize) {}
}

/// The line Keras prints at the end of an epoch.
pub fn epoch_line(r: &EpochRecord, steps_done: usize, steps_per_epoch: usize) -> String {
    let ms_per_step = 1000.0 * r.seconds / steps_done.max(1) as f64;
    let mut line = format!(
        "{steps_done}/{steps_per_epoch} - {:.1}s - {} - loss: {:.4} - accuracy: {:.4}",
        r.seconds,
        format_step_time(ms_per_step),
        r.loss,
        r.accuracy,
    );
    for (prefix, scores) in [("val", r.val), ("test", r.test)] {
        if let Some(s) = scores {
            line += &format!(
                " - {prefix}_loss: {:.4} - {prefix}_accuracy: {:.4}",
                s.loss, s.accuracy
            );
        }
    }
    line
}

/// The metrics of the live line: the running means so far.
pub fn live_metrics(running: &StepStats) -> String {
    format!(
        "loss: {:.4} - accuracy: {:.4}",
        running.mean_loss(),
        running.accuracy()
    )
}

fn format_step_time(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}ms/step")
    } else {
        format!("{:.0}us/step", ms * 1000.0)
    }
}

/// Keras' output on stdout: a live bar when stdout is a terminal, plain lines when it is not.
pub struct KerasProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Default for KerasProgress {
    fn default() -> Self {
        Self {
            bar: None,
            terminal: std::io::stdout().is_terminal(),
        }
    }
}

impl Progress for KerasProgress {
    fn live(&self) -> bool {
        self.terminal
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        outln!("Epoch {}/{epochs}", epoch + 1);
        if self.terminal {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{pos}/{len} [{bar:30}] ETA {eta} - {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            self.bar = Some(bar);
        }
    }

    fn tick(&mut self, step: usize, running: &StepStats) {
        if let Some(bar) = &self.bar {
            // The message first: moving the position redraws, so step count and metrics change
            // together.
            bar.set_message(live_metrics(running));
            bar.set_position(step as u64);
        }
    }

    fn epoch_end(&mut self, record: &EpochRecord, steps_done: usize, steps_per_epoch: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        outln!("{}", epoch_line(record, steps_done, steps_per_epoch));
    }
}
