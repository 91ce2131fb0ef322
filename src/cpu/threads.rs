//! The compute threads of the CPU path: a pool of two threads (or as many as the machine offers) and a
//! pool of one, and the choice between them step by step, from measured step times. Splitting a step
//! across two threads pays on a quiet machine, but when another process takes a core the split step
//! waits for its descheduled half and runs slower than one thread would (docs/perf.md). Both pools
//! compute the same bits (the products split by rows or columns, each element summed alike), so the
//! choice never changes a result. Tested by the unit tests below and tests/train_cpu.rs.

use std::time::Instant;

/// Steps between two probes of the pool not in use.
const PROBE_EVERY: u64 = 256;
/// Steps a probe runs on the other pool; the first `PROBE_WARM` are not counted (they pay for waking
/// that pool's threads).
const PROBE_STEPS: usize = 8;
const PROBE_WARM: usize = 2;
/// Recent steps of the pool in use that a probe is compared with.
const RECENT: usize = 16;
/// A probe wins when its median step is below this share of the pool in use's.
const SWITCH_BELOW: f64 = 0.9;

/// Which pool runs the next step: the one in use, except for `PROBE_STEPS` steps every `PROBE_EVERY`
/// on the other; when the probe's median step (its warm-up left out) is under `SWITCH_BELOW` of the
/// median of the last `RECENT` steps in use, the other pool is used from then on. Medians and a margin,
/// so a few slow steps (a VM's hiccup) do not move the choice.
#[derive(Clone, Debug)]
pub struct ThreadChoice {
    wide: bool,
    steps: u64,
    recent: Vec<f64>,
    probe: Vec<f64>,
}

impl Default for ThreadChoice {
    fn default() -> Self {
        Self::new()
    }
}

fn median(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl ThreadChoice {
    /// Starts on the wide pool.
    pub fn new() -> Self {
        Self {
            wide: true,
            steps: 0,
            recent: Vec::with_capacity(RECENT),
            probe: Vec::with_capacity(PROBE_STEPS),
        }
    }

    /// Whether the pool in use is the wide one.
    pub fn using_wide(&self) -> bool {
        self.wide
    }

    /// Whether the next step runs on the wide pool (else on one thread).
    pub fn wide_next(&self) -> bool {
        let probing = self.steps % PROBE_EVERY >= PROBE_EVERY - PROBE_STEPS as u64;
        self.wide != probing
    }

    /// Records a step of `seconds` on the wide pool or on one thread.
    pub fn record(&mut self, wide: bool, seconds: f64) {
        self.steps += 1;
        if wide == self.wide {
            if self.recent.len() == RECENT {
                self.recent.remove(0);
            }
            self.recent.push(seconds);
            return;
        }
        self.probe.push(seconds);
        if self.probe.len() < PROBE_STEPS {
            return;
        }
        let counted = self.probe.split_off(PROBE_WARM);
        self.probe.clear();
        if !self.recent.is_empty() && median(&counted) < SWITCH_BELOW * median(&self.recent) {
            self.wide = wide;
            self.recent = counted;
        }
    }
}

/// The two pools and the choice between them.
pub struct ComputeThreads {
    /// None in a browser (wasm32), which starts no threads: building a pool there fails (rayon's
    /// global pool alone falls back to the calling thread), so the calling thread computes, and the
    /// kernels' `rayon::join`s run inline on it as the global pool's one worker.
    wide: Option<rayon::ThreadPool>,
    /// None where the wide pool has one thread already.
    one: Option<rayon::ThreadPool>,
    choice: ThreadChoice,
}

impl ComputeThreads {
    /// Pools whose threads flush denormals (`fast::flush_denormals`): the wide one as many threads as
    /// rayon's default (the machine's cores, or RAYON_NUM_THREADS).
    pub fn new() -> Self {
        let pool = |threads: usize, name: &'static str| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("fmnist-{name}-{i}"))
                .start_handler(|_| super::flush_denormals())
                .build()
                .expect("a thread pool starts")
        };
        let wide = (!cfg!(target_arch = "wasm32")).then(|| pool(0, "cpu"));
        let one = wide
            .as_ref()
            .filter(|w| w.current_num_threads() > 1)
            .map(|_| pool(1, "cpu1"));
        Self {
            wide,
            one,
            choice: ThreadChoice::new(),
        }
    }

    /// Threads of the wide pool (1: the calling thread, where there is none).
    pub fn threads(&self) -> usize {
        self.wide.as_ref().map_or(1, |w| w.current_num_threads())
    }

    /// Runs one training step on the pool the choice names, and times it.
    pub fn step<R: Send>(&mut self, f: impl FnOnce() -> R + Send) -> R {
        let Some(one) = &self.one else {
            return self.install(f);
        };
        let wide = self.choice.wide_next();
        let t = Instant::now();
        let r = if wide {
            self.install(f)
        } else {
            one.install(f)
        };
        self.choice.record(wide, t.elapsed().as_secs_f64());
        r
    }

    /// Runs `f` on the wide pool (evaluation: long calls, no choice needed), or on the calling thread
    /// where there is none.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.wide {
            Some(wide) => wide.install(f),
            None => f(),
        }
    }
}

impl Default for ComputeThreads {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps where a wide step takes `wide_s` and a one-thread step `one_s`; returns
    /// the share of steps that ran wide.
    fn share_wide(choice: &mut ThreadChoice, steps: u64, wide_s: f64, one_s: f64) -> f64 {
        let mut wide_steps = 0;
        for _ in 0..steps {
            let wide = choice.wide_next();
            wide_steps += u64::from(wide);
            choice.record(wide, if wide { wide_s } else { one_s });
        }
        wide_steps as f64 / steps as f64
    }

    #[test]
    fn the_faster_pool_runs_all_but_the_probes() {
        let mut c = ThreadChoice::new();
        // Quiet machine: two threads are faster.
        let s = share_wide(&mut c, 2048, 1.0, 1.6);
        assert!(s > 0.95, "wide share {s} on a quiet machine");
        // A neighbour takes a core: the split step is now slower than one thread.
        let s = share_wide(&mut c, 4096, 2.2, 1.6);
        assert!(s < 0.1, "wide share {s} with a busy neighbour");
        // The neighbour leaves: the probes see it and the wide pool comes back.
        let s = share_wide(&mut c, 4096, 1.0, 1.6);
        assert!(s > 0.9, "wide share {s} after the neighbour left");
    }

    #[test]
    fn a_few_slow_steps_do_not_move_the_choice() {
        let mut c = ThreadChoice::new();
        let mut wide_steps = 0;
        for i in 0..4096u64 {
            let wide = c.wide_next();
            wide_steps += u64::from(wide);
            // Every 50th wide step is a 5x hiccup.
            let hiccup = if i % 50 == 0 { 5.0 } else { 1.0 };
            c.record(wide, if wide { hiccup } else { 1.6 });
        }
        assert!(c.using_wide(), "{c:?}");
        assert!(wide_steps > 3800, "{wide_steps} wide steps of 4096");
    }
}
