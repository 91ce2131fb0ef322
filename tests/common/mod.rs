//! Shared by the GPU tests: open an adapter or skip. A missing adapter prints `skipped: no adapter` and
//! the test passes, unless FMNIST_REQUIRE_GPU=1 (set by `make test` and CI, which have lavapipe): then
//! it fails. FMNIST_ADAPTER picks the adapter by name substring, as `--adapter` does.

#![allow(dead_code)]

use fmnist::gpu::GpuContext;
use fmnist::gpu::context::Needs;

pub fn require_gpu() -> bool {
    std::env::var("FMNIST_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

pub fn adapter_name() -> Option<String> {
    std::env::var("FMNIST_ADAPTER")
        .ok()
        .filter(|s| !s.is_empty())
}

/// An open device, or `None` (after printing why) when there is none and none is required.
pub fn gpu_or_skip(test: &str) -> Option<GpuContext> {
    gpu_with_needs_or_skip(test, Needs::default())
}

pub fn gpu_with_needs_or_skip(test: &str, needs: Needs) -> Option<GpuContext> {
    match GpuContext::open(adapter_name().as_deref(), needs) {
        Ok(ctx) => {
            eprintln!("{test}: on {}", ctx.adapter.describe());
            Some(ctx)
        }
        Err(e) if !require_gpu() => {
            println!("{test}: skipped: no adapter ({e:#})");
            eprintln!("{test}: skipped: no adapter ({e:#})");
            None
        }
        Err(e) => panic!("{test}: FMNIST_REQUIRE_GPU=1 but no adapter: {e:#}"),
    }
}

/// Fails with every failing case listed (worst index, both values, tolerance used).
pub fn assert_all_pass(what: &str, cases: &[fmnist::gpu::selftest::CaseResult]) {
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.closeness.pass())
        .map(|c| format!("  {} {}: {}", c.kernel, c.shape, c.closeness.describe()))
        .collect();
    for c in cases {
        eprintln!("{}", c.line());
    }
    assert!(
        failed.is_empty(),
        "{what}: {} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}
