//! How close a result is to its reference: `|got - want| <= atol + rtol * |want|` elementwise, the index
//! that used most of its tolerance with both values (`Closeness`), the tolerances of elementwise ops and
//! of reductions, and one row of the report table (`CaseResult`). Device-neutral: the GPU self-test
//! (`gpu::selftest`, `fmnist selftest`) and the tests build their verdicts from it. Tested by
//! tests/kernels.rs (a NaN or an off value is caught with its index and values) and by every case that
//! must pass.

/// Elementwise ops and Adam.
pub const TOL_ELEMENTWISE: (f32, f32) = (1e-6, 1e-5);
/// Reductions (matmuls over k, column sums, loss sums).
pub const TOL_REDUCTION: (f32, f32) = (1e-5, 1e-4);

/// How far a GPU result is from its CPU twin.
#[derive(Clone, Debug)]
pub struct Closeness {
    pub max_abs: f32,
    pub max_rel: f32,
    /// Index of the element that used most of its tolerance, with both values.
    pub worst: usize,
    pub gpu: f32,
    pub cpu: f32,
    /// Largest `|gpu - cpu| / (atol + rtol |cpu|)`: <= 1 passes; infinite for NaN or a length mismatch.
    pub used: f32,
    pub atol: f32,
    pub rtol: f32,
}

impl Closeness {
    pub fn pass(&self) -> bool {
        self.used <= 1.0
    }
    pub fn describe(&self) -> String {
        format!(
            "max abs {:.2e}, max rel {:.2e}, worst [{}] gpu {} cpu {} ({:.0}% of atol {:.0e} + rtol {:.0e})",
            self.max_abs,
            self.max_rel,
            self.worst,
            self.gpu,
            self.cpu,
            100.0 * self.used,
            self.atol,
            self.rtol
        )
    }
}

/// Compares elementwise; NaN anywhere in `gpu` fails.
pub fn compare(gpu: &[f32], cpu: &[f32], (atol, rtol): (f32, f32)) -> Closeness {
    let mut c = Closeness {
        max_abs: 0.0,
        max_rel: 0.0,
        worst: 0,
        gpu: f32::NAN,
        cpu: f32::NAN,
        used: if gpu.len() == cpu.len() {
            0.0
        } else {
            f32::INFINITY
        },
        atol,
        rtol,
    };
    for (i, (&g, &r)) in gpu.iter().zip(cpu).enumerate() {
        let d = (g - r).abs();
        let used = if d.is_nan() {
            f32::INFINITY
        } else {
            d / (atol + rtol * r.abs())
        };
        c.max_abs = c.max_abs.max(if d.is_nan() { f32::INFINITY } else { d });
        if r != 0.0 {
            c.max_rel = c.max_rel.max(d / r.abs());
        }
        if used > c.used || i == 0 {
            c.used = c.used.max(used);
            (c.worst, c.gpu, c.cpu) = (i, g, r);
        }
    }
    c
}

/// One row of the self-test table.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub kernel: String,
    pub shape: String,
    pub closeness: Closeness,
}

impl CaseResult {
    pub fn line(&self) -> String {
        let c = &self.closeness;
        format!(
            "{:<28} {:<14} {:>10.2e} {:>10.2e} {:>14} {}",
            self.kernel,
            self.shape,
            c.max_abs,
            c.max_rel,
            format!("{:.0e}/{:.0e}", c.atol, c.rtol),
            if c.pass() {
                "pass".to_string()
            } else {
                format!("FAIL: {}", c.describe())
            }
        )
    }
    pub fn header() -> String {
        format!(
            "{:<28} {:<14} {:>10} {:>10} {:>14} {}",
            "kernel", "shape", "max abs", "max rel", "atol/rtol", "result"
        )
    }
}
