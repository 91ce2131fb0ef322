//! What the fit loop needs from an engine, with the readbacks as futures: a `Backend` answers them at
//! once (`Blocking`, which `fit_from` blocks on), a GPU engine awaits its mappings (what `fit_engine`
//! runs on it, in a browser too). Everything else is the `Backend` the engine also is.
//! Tested through every training test and tests/gpu_train.rs (the two agree).

use std::future::{Future, ready};
use std::sync::Arc;

use anyhow::Result;

use crate::backend::Backend;
use crate::data::Split;
use crate::evaluate::{Evaluation, evaluate, evaluate_gpu_async};
use crate::gpu::GpuBackend;
use crate::metrics::StepStats;

/// An engine the fit loop trains: a `Backend`, and its three readbacks as futures.
pub trait FitEngine {
    /// The engine as a `Backend`, for everything that answers at once.
    fn backend(&mut self) -> &mut dyn Backend;
    /// `Backend::take_stats`.
    fn awaited_stats(&mut self) -> impl Future<Output = Result<StepStats>>;
    /// `evaluate` of `split`.
    fn awaited_evaluation<'a>(
        &'a mut self,
        split: &'a Arc<Split>,
    ) -> impl Future<Output = Result<Evaluation>> + 'a;
    /// `Backend::params`.
    fn awaited_params(&mut self) -> impl Future<Output = Result<Vec<f32>>>;
    /// Whether the loop must await the stats before its next step: the engine cannot read them
    /// itself when its slots run out (a browser's, which may not block).
    fn stats_due(&self) -> bool {
        false
    }
}

/// Any `Backend`, its readbacks answered at once (they block until done).
pub struct Blocking<'b>(pub &'b mut dyn Backend);

impl FitEngine for Blocking<'_> {
    fn backend(&mut self) -> &mut dyn Backend {
        self.0
    }

    fn awaited_stats(&mut self) -> impl Future<Output = Result<StepStats>> {
        ready(self.0.take_stats())
    }

    fn awaited_evaluation<'a>(
        &'a mut self,
        split: &'a Arc<Split>,
    ) -> impl Future<Output = Result<Evaluation>> + 'a {
        ready(evaluate(self.0, split))
    }

    fn awaited_params(&mut self) -> impl Future<Output = Result<Vec<f32>>> {
        ready(self.0.params())
    }
}

impl FitEngine for GpuBackend {
    fn backend(&mut self) -> &mut dyn Backend {
        self
    }

    fn awaited_stats(&mut self) -> impl Future<Output = Result<StepStats>> {
        self.take_stats_async()
    }

    fn awaited_evaluation<'a>(
        &'a mut self,
        split: &'a Arc<Split>,
    ) -> impl Future<Output = Result<Evaluation>> + 'a {
        evaluate_gpu_async(self, split)
    }

    fn awaited_params(&mut self) -> impl Future<Output = Result<Vec<f32>>> {
        self.params_async()
    }

    fn stats_due(&self) -> bool {
        GpuBackend::stats_due(self)
    }
}
