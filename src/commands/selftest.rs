//! `fmnist selftest`: every GPU kernel against its CPU twin over the shape ladder, as a table, then one
//! training step GPU vs CPU on each operand path (storage buffers and texture mirrors). Exits non-zero on any failure, so users can trust (or report) their GPU.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::check::CaseResult;
use fmnist::gpu::GpuContext;
use fmnist::gpu::context::Needs;
use fmnist::gpu::harness::Harness;
use fmnist::gpu::plan::Operands;
use fmnist::gpu::selftest;
use fmnist::model::MlpSpec;
use fmnist::outln;

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Pick the GPU adapter whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(args: SelftestArgs) -> Result<ExitCode> {
    let ctx = GpuContext::open(args.adapter.as_deref(), Needs::default())?;
    outln!("Adapter: {}", ctx.adapter.describe());
    outln!("{}", CaseResult::header());
    let h = Harness::new(ctx);
    let mut cases = pollster::block_on(selftest::kernel_ladder(&h, args.seed))?;
    for c in &cases {
        outln!("{}", c.line());
    }
    let spec = MlpSpec::fashion(&[128])?;
    for operands in [Operands::Buffers, Operands::Textures] {
        let ctx = GpuContext::open(args.adapter.as_deref(), Needs::default())?;
        let step = pollster::block_on(selftest::one_step_cases(
            ctx, operands, &spec, 32, args.seed,
        ))?;
        for c in &step {
            outln!("{}", c.line());
        }
        cases.extend(step);
    }
    let failed = cases.iter().filter(|c| !c.closeness.pass()).count();
    if failed == 0 {
        outln!("selftest: all {} checks passed", cases.len());
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("selftest: {failed} of {} checks FAILED", cases.len());
        Ok(ExitCode::FAILURE)
    }
}
