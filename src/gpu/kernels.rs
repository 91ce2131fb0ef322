//! The WGSL entry points (`shaders/*.wgsl`, `include_str!`): each one's file, workgroup size, storage
//! buffers and dispatch size for a shape. Their pipelines, layouts and bind groups are built per device
//! in `pipelines`, and the `#[repr(C)]` mirrors of the shaders' uniform structs live in `uniforms`; both
//! are re-exported here. Tested by tests/kernels.rs (every entry point against its CPU
//! twin) and tests/shaders.rs (naga validation of every file, workgroup sizes and uniform structs
//! against the WGSL).

use crate::config::OptimizerKind;
pub use crate::gpu::bindings::{bind_group, tex_bind_group, views_bind_group};
pub use crate::gpu::pipelines::*;
pub use crate::gpu::uniforms::*;

pub const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");
pub const OPTIMIZERS_WGSL: &str = include_str!("../../shaders/optimizers.wgsl");
pub const GATHER_WGSL: &str = include_str!("../../shaders/gather.wgsl");
pub const TAIL_WGSL: &str = include_str!("../../shaders/tail.wgsl");

/// Every shader file, for validation tests.
pub const SHADERS: [(&str, &str); 4] = [
    ("matmul.wgsl", MATMUL_WGSL),
    ("optimizers.wgsl", OPTIMIZERS_WGSL),
    ("gather.wgsl", GATHER_WGSL),
    ("tail.wgsl", TAIL_WGSL),
];

/// Invocations per matmul workgroup along x (column quads) and y (row quads); each does a 4x4 block.
pub const MM_WG: u32 = 8;
/// Rows and columns of C one workgroup of the buffer matmuls covers (8x8 invocations of 4x4 blocks).
pub const MM_TILE: usize = (MM_WG * 4) as usize;
/// The same for the texture variants (8x8 invocations of 8x8 blocks).
pub const TEX_TILE: usize = (MM_WG * 8) as usize;
/// Invocations per workgroup of the 1-D kernels.
pub const WG_1D: u32 = 64;
/// Invocations of dense_tail's one workgroup (`WG` in tail.wgsl); it writes one `StepStat` per step.
pub const TAIL_WG: u32 = 256;
/// Invocations of dense_tail_tex's one workgroup (`TT_WG` in tail.wgsl), and the most classes it keeps
/// in registers (`TT_MAX_CLASSES`); the texture path runs dense_tail for wider last layers.
pub const TAIL_TEX_WG: u32 = 32;
pub const TAIL_TEX_MAX_CLASSES: usize = 16;
/// forward_gather's tile of act per workgroup (rows, columns), and the K slices that share it
/// (`FG_SLICES`, `FG_BLOCKS` in gather.wgsl: 4x4 blocks x slices = 128 invocations).
pub const FG_TILE_ROWS: usize = 16;
pub const FG_TILE_COLS: usize = 8;
pub const FG_SLICES: u32 = 16;
/// Storage buffers per stage the context asks for where the adapter offers them (WebGPU's default).
pub const STORAGE_BUFFERS_WANTED: u32 = 8;
/// The most workgroups one dispatch dimension may have (WebGPU's default limit).
pub const MAX_GROUPS_PER_DIM: usize = 65_535;

/// The entry points, for pipelines and the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    MmNn,
    MmNt,
    MmTn,
    /// `mm_nn` with A and B read from textures (group 1).
    MmNnTex,
    /// `mm_tn` with A and B read from textures (group 1).
    MmTnTex,
    /// `mm_nt` with A and B read from textures (group 1).
    MmNtTex,
    /// Adam reading p, g, m and v from texture mirrors (group 1).
    AdamTex,
    /// Adam over a range of the flat storage buffers.
    Adam,
    /// SGD, as `adam_tex` and `adam` read their operands.
    SgdTex,
    Sgd,
    /// RMSprop, as `adam_tex` and `adam` read their operands.
    RmspropTex,
    Rmsprop,
    Gather,
    ForwardGather,
    DenseTail,
    /// `dense_tail` with act and W|b read from textures (group 1).
    DenseTailTex,
    GradUpdateGather,
    /// `grad_update_gather` with its operands (samples, order, dZ, p, m, v) read from textures (group 1).
    GradUpdateGatherTex,
    /// `forward_gather` with the samples, order and W read from textures (group 1).
    ForwardGatherTex,
    /// Dropout over a hidden layer's output past the first, in place.
    Dropout,
}

impl Kernel {
    /// The texture-mirror update of `kind`.
    pub fn update_tex(kind: OptimizerKind) -> Kernel {
        match kind {
            OptimizerKind::Adam => Kernel::AdamTex,
            OptimizerKind::Sgd => Kernel::SgdTex,
            OptimizerKind::Rmsprop => Kernel::RmspropTex,
        }
    }

    /// The buffer-range update of `kind`.
    pub fn update_range(kind: OptimizerKind) -> Kernel {
        match kind {
            OptimizerKind::Adam => Kernel::Adam,
            OptimizerKind::Sgd => Kernel::Sgd,
            OptimizerKind::Rmsprop => Kernel::Rmsprop,
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::MmNn => "mm_nn",
            Kernel::MmNt => "mm_nt",
            Kernel::MmTn => "mm_tn",
            Kernel::MmNnTex => "mm_nn_tex",
            Kernel::MmTnTex => "mm_tn_tex",
            Kernel::MmNtTex => "mm_nt_tex",
            Kernel::AdamTex => "adam_tex",
            Kernel::Adam => "adam",
            Kernel::SgdTex => "sgd_tex",
            Kernel::Sgd => "sgd",
            Kernel::RmspropTex => "rmsprop_tex",
            Kernel::Rmsprop => "rmsprop",
            Kernel::Gather => "gather",
            Kernel::ForwardGather => "forward_gather",
            Kernel::DenseTail => "dense_tail",
            Kernel::DenseTailTex => "dense_tail_tex",
            Kernel::GradUpdateGather => "grad_update_gather",
            Kernel::GradUpdateGatherTex => "grad_update_gather_tex",
            Kernel::ForwardGatherTex => "forward_gather_tex",
            Kernel::Dropout => "dropout",
        }
    }

    pub const ALL: [Kernel; 20] = [
        Kernel::MmNn,
        Kernel::MmNt,
        Kernel::MmTn,
        Kernel::MmNnTex,
        Kernel::MmTnTex,
        Kernel::MmNtTex,
        Kernel::AdamTex,
        Kernel::Adam,
        Kernel::SgdTex,
        Kernel::Sgd,
        Kernel::RmspropTex,
        Kernel::Rmsprop,
        Kernel::Gather,
        Kernel::ForwardGather,
        Kernel::DenseTail,
        Kernel::DenseTailTex,
        Kernel::GradUpdateGather,
        Kernel::GradUpdateGatherTex,
        Kernel::ForwardGatherTex,
        Kernel::Dropout,
    ];

    /// The shader file holding the entry point, as named in `SHADERS`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex => "matmul.wgsl",
            Kernel::AdamTex
            | Kernel::Adam
            | Kernel::SgdTex
            | Kernel::Sgd
            | Kernel::RmspropTex
            | Kernel::Rmsprop
            | Kernel::GradUpdateGatherTex => "optimizers.wgsl",
            Kernel::Gather
            | Kernel::ForwardGather
            | Kernel::GradUpdateGather
            | Kernel::ForwardGatherTex
            | Kernel::Dropout => "gather.wgsl",
            Kernel::DenseTail | Kernel::DenseTailTex => "tail.wgsl",
        }
    }

    /// The entry point's `@workgroup_size`, as in its WGSL (tests/shaders.rs checks them against each
    /// other): invocations per dispatch are its product times the groups.
    pub fn workgroup_size(self) -> (u32, u32, u32) {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex
            | Kernel::GradUpdateGatherTex
            | Kernel::ForwardGatherTex => (MM_WG, MM_WG, 1),
            Kernel::AdamTex | Kernel::SgdTex | Kernel::RmspropTex | Kernel::GradUpdateGather => {
                (16, 4, 1)
            }
            Kernel::Adam | Kernel::Sgd | Kernel::Rmsprop | Kernel::Gather | Kernel::Dropout => {
                (WG_1D, 1, 1)
            }
            Kernel::ForwardGather => {
                let blocks = (FG_TILE_ROWS / 4) * (FG_TILE_COLS / 4);
                (FG_SLICES * blocks as u32, 1, 1)
            }
            Kernel::DenseTail => (TAIL_WG, 1, 1),
            Kernel::DenseTailTex => (TAIL_TEX_WG, 1, 1),
        }
    }

    /// Storage buffers the entry point binds: a device with fewer per stage cannot run it (the downlevel
    /// limit is 4; the two tails and grad_update_gather need more, see `Kernels::supports`).
    pub fn storage_buffers(self) -> u32 {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex
            | Kernel::AdamTex
            | Kernel::Adam
            | Kernel::SgdTex
            | Kernel::Sgd
            | Kernel::RmspropTex
            | Kernel::Rmsprop
            | Kernel::ForwardGather
            | Kernel::GradUpdateGatherTex => 4,
            Kernel::Gather => 3,
            Kernel::Dropout => 1,
            Kernel::ForwardGatherTex => 2,
            Kernel::DenseTail => 7,
            Kernel::GradUpdateGather => 6,
            Kernel::DenseTailTex => 8,
        }
    }

    /// Invocations a dispatch of `groups` workgroups runs.
    pub fn invocations(self, groups: (u32, u32, u32)) -> u64 {
        let (x, y, z) = self.workgroup_size();
        (x * y * z) as u64 * groups.0 as u64 * groups.1 as u64 * groups.2 as u64
    }
}

/// Workgroups of the matmul `kernel` producing C (m, n): one per tile of C.
pub fn matmul_groups(kernel: Kernel, m: usize, n: usize) -> (u32, u32, u32) {
    let tile = match kernel {
        Kernel::MmNnTex | Kernel::MmTnTex | Kernel::ForwardGatherTex => TEX_TILE,
        _ => MM_TILE,
    };
    (n.div_ceil(tile) as u32, m.div_ceil(tile) as u32, 1)
}

/// Workgroups of the texture updates (adam_tex, sgd_tex, rmsprop_tex) over the vec4s from texel row
/// `row0` to `len4`, held in texture mirrors `row4` texels wide: that part of the texel grid in 16x4
/// workgroups.
pub fn update_tex_groups(len4: usize, row4: usize, row0: usize) -> (u32, u32, u32) {
    let rows = len4.div_ceil(row4).saturating_sub(row0).max(1);
    (row4.div_ceil(16) as u32, rows.div_ceil(4) as u32, 1)
}

/// Workgroups of grad_update_gather_tex over W (inputs, fan_out): an 8x8 block of W per invocation,
/// 8x8 invocations a workgroup (the grid of mm_tn_tex producing the same W).
pub fn grad_update_gather_tex_groups(inputs: usize, fan_out: usize) -> (u32, u32, u32) {
    matmul_groups(Kernel::MmTnTex, inputs, fan_out)
}

/// Workgroups of the range updates (adam, sgd, rmsprop) over `len4` vec4s: one vec4 per invocation, 64
/// a workgroup, folded into rows of at most `MAX_GROUPS_PER_DIM` workgroups (the shader unfolds them
/// with num_workgroups).
pub fn update_range_groups(len4: usize) -> (u32, u32, u32) {
    let groups = len4.div_ceil(WG_1D as usize).max(1);
    let x = groups.min(MAX_GROUPS_PER_DIM);
    (x as u32, groups.div_ceil(x) as u32, 1)
}

/// Workgroups of gather into x (capacity, ldx): one invocation per vec4 of x, rows along y.
pub fn gather_groups(capacity: usize, ldx: usize) -> (u32, u32, u32) {
    (
        (ldx / 4).div_ceil(WG_1D as usize) as u32,
        capacity as u32,
        1,
    )
}

/// Workgroups of dropout over act (capacity, cols): one invocation per column quad, rows along y.
pub fn dropout_groups(capacity: usize, cols: usize) -> (u32, u32, u32) {
    (
        cols.div_ceil(4).div_ceil(WG_1D as usize) as u32,
        capacity as u32,
        1,
    )
}

/// Workgroups of forward_gather producing act (capacity, fan_out): one per 16 x 8 tile.
pub fn forward_gather_groups(capacity: usize, fan_out: usize) -> (u32, u32, u32) {
    (
        fan_out.div_ceil(FG_TILE_COLS) as u32,
        capacity.div_ceil(FG_TILE_ROWS) as u32,
        1,
    )
}

/// Workgroups of dense_tail: always one, whatever the shape (it loops over its work).
pub fn dense_tail_groups() -> (u32, u32, u32) {
    (1, 1, 1)
}

/// Workgroups of grad_update_gather over W (inputs, fan_out): one invocation per 4x4 block, 16x4 blocks a
/// workgroup.
pub fn grad_update_gather_groups(inputs: usize, fan_out: usize) -> (u32, u32, u32) {
    (
        fan_out.div_ceil(4).div_ceil(16) as u32,
        inputs.div_ceil(4).div_ceil(4) as u32,
        1,
    )
}
