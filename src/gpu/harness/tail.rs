//! The harness runs of the two tails, `dense_tail` (buffer operands) and `dense_tail_tex` (act and W|b
//! as textures, optionally applying Adam to the layer), on one `StepCase` with NaN-padded inputs and
//! poisoned outputs. Tested through tests/kernels.rs (`gpu::selftest::dense_tail_case` and the rest).

use anyhow::Result;

use super::Harness;
use super::buffer_path::{
    POISON_STAT, Packed, ParamsPacking, STAT_FLOATS, StepCase, pad_ld, unpad_ld,
};
use crate::config::OptimizerConfig;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::{StepRecord, StepStat, TailDims};

/// What a dense_tail run returns, tight: dlogits (capacity, classes), dW (k, classes), db (classes),
/// dZ (capacity, k) (all NaN when not asked for), and the one stats record.
pub struct TailOut {
    pub dlogits: Vec<f32>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
    pub dx: Vec<f32>,
    pub stat: StepStat,
    /// dense_tail_tex with Adam: p, m and v after the update, in the `ParamsPacking::new` layout.
    pub after: Option<Packed>,
}

/// dense_tail_tex's update in a harness run: the optimizer's m and v before the step (tight, W then b),
/// the step size and the optimizer.
pub struct TailUpdateStart {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub alpha: f32,
    pub optimizer: OptimizerConfig,
}

impl Harness {
    /// `dense_tail` on act (capacity, k) tight, whose rows past the step are sent as NaN (they must not
    /// be read), W (k, classes), b (classes), the labels and order of `case`. Every padding lane of the
    /// inputs is NaN, every output poisoned. `input_grad` asks for dZ.
    #[allow(clippy::too_many_arguments)]
    pub async fn dense_tail(
        &self,
        case: &StepCase,
        act: &[f32],
        w: &[f32],
        b: &[f32],
        k: usize,
        classes: usize,
        input_grad: bool,
    ) -> Result<TailOut> {
        self.tail_kernel(
            Kernel::DenseTail,
            case,
            act,
            w,
            b,
            k,
            classes,
            input_grad.then_some(0.0),
            None,
        )
        .await
    }

    /// As `dense_tail`, running `kernel`: `DenseTail`, or `DenseTailTex` reading act and W|b from
    /// textures holding the same NaN-padded values (b as the row after W's), with `adam` also updating
    /// W and b (p's padding is NaN, m's and v's finite sentinels; all must come back bit for bit).
    /// `input_grad` asks for dZ with that dropout scale (0: no dropout below).
    #[allow(clippy::too_many_arguments)]
    pub async fn tail_kernel(
        &self,
        kernel: Kernel,
        case: &StepCase,
        act: &[f32],
        w: &[f32],
        b: &[f32],
        k: usize,
        classes: usize,
        input_grad: Option<f32>,
        adam: Option<&TailUpdateStart>,
    ) -> Result<TailOut> {
        let mask_scale = input_grad.unwrap_or(0.0);
        let d = &self.ctx.device;
        let cap = case.capacity;
        let lda = pad4(k);
        let mut act_pad = pad_ld(act, cap, k, lda, f32::NAN);
        act_pad[case.rows.rows * lda..].fill(f32::NAN);
        let pk = ParamsPacking::new(k, classes);
        let params = pk.pack(w, b, f32::NAN);
        let ldo = pad4(classes);
        let dl_off = cap * lda + 4;
        let dz_poison = vec![f32::NAN; dl_off + cap * ldo];
        let g_poison = vec![f32::NAN; pk.total];
        let stats_init = [POISON_STAT; 4];
        let l_buf = buffers::storage_init(d, "selftest labels", bytemuck::cast_slice(&case.labels));
        let (_, order) = self.split_buffers(case);
        let g_buf = buffers::storage_init(
            d,
            "selftest grads (poisoned)",
            bytemuck::cast_slice(&g_poison),
        );
        let dz_buf = buffers::storage_init(
            d,
            "selftest dz (poisoned)",
            bytemuck::cast_slice(&dz_poison),
        );
        let s_buf = buffers::storage_init(d, "selftest stats", bytemuck::cast_slice(&stats_init));
        let dims = TailDims {
            k: k as u32,
            classes: classes as u32,
            capacity: cap as u32,
            lda: lda as u32,
            ldw: pk.ld as u32,
            ldo: ldo as u32,
            w_off: pk.w_off as u32,
            b_off: pk.b_off as u32,
            dl_off: dl_off as u32,
            dx_off: 0,
            direct: case.rows.direct as u32,
            input_grad: input_grad.is_some() as u32,
            update: u32::from(adam.is_some()),
            mask_scale,
            _pad: [0; 2],
        };
        let kernels = match adam {
            Some(a) => self.kernels_for(&a.optimizer),
            None => self.kernels_for(&OptimizerConfig::default()),
        };
        let u = buffers::uniform_init(d, "selftest tail dims", bytemuck::bytes_of(&dims));
        let w_len = k * classes;
        let (m0, v0) = match adam {
            Some(a) => (
                pk.pack(&a.m[..w_len], &a.m[w_len..], 0.5),
                pk.pack(&a.v[..w_len], &a.v[w_len..], 0.25),
            ),
            None => (vec![0.5; pk.total], vec![0.25; pk.total]),
        };
        let p_out = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&params));
        let m_buf = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&m0));
        let v_buf = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&v0));
        let rec = StepRecord {
            alpha: adam.map_or(0.0, |a| a.alpha),
            ..case.record()
        };
        let (r, at) = self.record_buffer(&rec);
        let record = std::mem::size_of::<StepRecord>() as u64;
        let (bind, tex) = if kernel == Kernel::DenseTailTex {
            let texture = |label: &str, data: &[f32], rows: usize, width: usize| {
                let t = buffers::float_texture(d, label, width, rows)?;
                buffers::write_texture(&self.ctx.queue, &t, width, rows, data);
                anyhow::Ok(t.create_view(&Default::default()))
            };
            let act_t = texture("selftest act_tex", &act_pad, cap, lda)?;
            let mut wb = pad_ld(w, k, classes, ldo, f32::NAN);
            wb.extend(pad_ld(b, 1, classes, ldo, f32::NAN));
            let wb_t = texture("selftest wb_tex", &wb, k + 1, ldo)?;
            let bind = kernels::bind_group(
                d,
                "selftest dense_tail_tex",
                kernels.layout(kernel),
                &[
                    &l_buf, &order, &g_buf, &dz_buf, &s_buf, &p_out, &m_buf, &v_buf, &u, &r,
                ],
                Some((9, at, record)),
            );
            let tex = kernels::tex_bind_group(d, "selftest tail textures", &kernels, &act_t, &wb_t);
            (bind, Some(tex))
        } else {
            let a_buf = buffers::storage_init(d, "selftest act", bytemuck::cast_slice(&act_pad));
            let p_buf = buffers::storage_init(d, "selftest params", bytemuck::cast_slice(&params));
            let bind = kernels::bind_group(
                d,
                "selftest dense_tail",
                kernels.layout(kernel),
                &[
                    &a_buf, &p_buf, &l_buf, &order, &g_buf, &dz_buf, &s_buf, &u, &r,
                ],
                Some((8, at, record)),
            );
            (bind, None)
        };
        self.run_on(
            &kernels,
            kernel,
            &bind,
            tex.as_ref(),
            kernels::dense_tail_groups(),
        );
        let dz = self.download(&dz_buf, dz_poison.len()).await?;
        let grads = self.download(&g_buf, g_poison.len()).await?;
        let stats = self
            .download(&s_buf, STAT_FLOATS * stats_init.len())
            .await?;
        let stats: &[StepStat] = bytemuck::cast_slice(&stats);
        let (dw, db) = pk.unpack(&grads);
        let after = match adam {
            Some(_) => Some(Packed {
                p: self.download(&p_out, pk.total).await?,
                m: self.download(&m_buf, pk.total).await?,
                v: self.download(&v_buf, pk.total).await?,
            }),
            None => None,
        };
        Ok(TailOut {
            dlogits: unpad_ld(&dz, dl_off, cap, classes, ldo),
            dw,
            db,
            dx: unpad_ld(&dz, 0, cap, k, lda),
            stat: stats[2],
            after,
        })
    }
}
