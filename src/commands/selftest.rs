//! `fmnist selftest`: every GPU kernel against its CPU twin over the shape ladder, as a table, then one
//! training step GPU vs CPU on each operand path (storage buffers and texture mirrors). Exits non-zero
//! on any failure, so users can trust (or report) their GPU. The checks are `selftest::run_all`, which
//! a browser awaits; this command blocks on it and prints.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::check::CaseResult;
use fmnist::gpu::selftest;
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
    let run = pollster::block_on(selftest::run_all(args.adapter.as_deref(), args.seed))?;
    outln!("Adapter: {}", run.adapter);
    outln!("{}", CaseResult::header());
    for c in &run.cases {
        outln!("{}", c.line());
    }
    let cases = &run.cases;
    let failed = cases.iter().filter(|c| !c.closeness.pass()).count();
    if failed == 0 {
        outln!("selftest: all {} checks passed", cases.len());
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("selftest: {failed} of {} checks FAILED", cases.len());
        Ok(ExitCode::FAILURE)
    }
}
