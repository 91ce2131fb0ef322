//! Every `shaders/*.wgsl` parses and validates with naga (the version wgpu 30 uses), without a device,
//! and every file on disk is one the engine loads (no stray experiments in shaders/).

use fmnist::gpu::kernels::SHADERS;

#[test]
fn every_shader_validates_with_naga() {
    for (name, src) in SHADERS {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn every_file_in_shaders_is_loaded_by_the_engine() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut loaded: Vec<String> = SHADERS.iter().map(|(n, _)| n.to_string()).collect();
    loaded.sort();
    assert_eq!(on_disk, loaded);
}

/// The field lines of `struct NAME { ... }` in `src`, comments and blanks dropped.
fn struct_fields(src: &str, name: &str) -> Vec<String> {
    let start = src
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("struct {name}"));
    let end = start + src[start..].find('}').unwrap();
    src[start..end]
        .lines()
        .skip(1)
        .map(|l| l.split("//").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn shader(file: &str) -> &'static str {
    SHADERS.iter().find(|(n, _)| *n == file).unwrap().1
}

#[test]
fn the_step_record_is_the_same_struct_in_every_shader_that_reads_it() {
    // Every kernel of a step reads `Step` from the same record: their fields must agree.
    let readers: Vec<&str> = SHADERS
        .iter()
        .filter(|(_, src)| src.contains("struct Step {"))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(readers, ["optimizers.wgsl", "gather.wgsl", "tail.wgsl"]);
    let first = struct_fields(shader(readers[0]), "Step");
    for r in &readers {
        assert_eq!(struct_fields(shader(r), "Step"), first, "{r}");
    }
    assert_eq!(
        first.len(),
        std::mem::size_of::<fmnist::gpu::kernels::StepRecord>() / 4
    );
    assert!(first.contains(&"start: u32,".to_string()));
}

#[test]
fn uniform_and_stat_structs_match_their_rust_mirrors_in_size() {
    // Every field is 4 bytes, so the field count gives the WGSL size; each is a multiple of 16 bytes.
    use fmnist::gpu::kernels::*;
    use std::mem::size_of;
    for (file, name, size) in [
        ("gather.wgsl", "GatherDims", size_of::<GatherDims>()),
        (
            "gather.wgsl",
            "ForwardGatherDims",
            size_of::<ForwardGatherDims>(),
        ),
        ("gather.wgsl", "GradUpdateDims", size_of::<GradUpdateDims>()),
        (
            "optimizers.wgsl",
            "GradUpdateGatherTexDims",
            size_of::<GradUpdateGatherTexDims>(),
        ),
        (
            "gather.wgsl",
            "ForwardGatherTexDims",
            size_of::<ForwardGatherTexDims>(),
        ),
        ("tail.wgsl", "TailDims", size_of::<TailDims>()),
        ("gather.wgsl", "DropoutDims", size_of::<DropoutDims>()),
        ("matmul.wgsl", "MatmulDims", size_of::<MatmulDims>()),
        (
            "optimizers.wgsl",
            "UpdateRangeDims",
            size_of::<UpdateRangeDims>(),
        ),
        (
            "optimizers.wgsl",
            "UpdateTexDims",
            size_of::<UpdateTexDims>(),
        ),
        ("tail.wgsl", "StepStat", size_of::<StepStat>()),
    ] {
        assert_eq!(
            struct_fields(shader(file), name).len() * 4,
            size,
            "{file} {name}"
        );
        assert_eq!(size % 16, 0, "{name}");
    }
}

#[test]
fn every_kernel_workgroup_size_matches_its_wgsl() {
    use fmnist::gpu::kernels::Kernel;
    for k in Kernel::ALL {
        let src = shader(k.file());
        let at = src
            .find(&format!("fn {}(", k.entry_point()))
            .unwrap_or_else(|| panic!("{} in {}", k.entry_point(), k.file()));
        let attr = src[..at].rfind("@workgroup_size(").unwrap() + "@workgroup_size(".len();
        let args = &src[attr..attr + src[attr..].find(')').unwrap()];
        let mut dims: Vec<u32> = args.split(',').map(|a| a.trim().parse().unwrap()).collect();
        dims.resize(3, 1);
        assert_eq!(
            (dims[0], dims[1], dims[2]),
            k.workgroup_size(),
            "{}",
            k.entry_point()
        );
    }
}

/// The text between `start` and `end` (both included) in `src`.
fn block<'a>(src: &'a str, start: &str, end: &str) -> &'a str {
    let a = src.find(start).unwrap_or_else(|| panic!("`{start}`"));
    let b = a + src[a..].find(end).unwrap_or_else(|| panic!("`{end}`")) + end.len();
    &src[a..b]
}

#[test]
fn the_optimizer_update_is_the_same_text_in_every_shader_that_applies_it() {
    // Each fused kernel applies the pipeline's optimizer with the same functions and overridable
    // constants (gpu::pipelines sets them for every module that holds them).
    let start = "// ---- The optimizer's update:";
    let end = "// ---- end of the optimizer's update ----";
    let holders: Vec<&str> = SHADERS
        .iter()
        .filter(|(_, src)| src.contains(start))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(holders, ["optimizers.wgsl", "gather.wgsl", "tail.wgsl"]);
    let first = block(shader(holders[0]), start, end);
    for h in &holders {
        assert_eq!(block(shader(h), start, end), first, "{h}");
    }
    for constant in [
        "OPTIMIZER",
        "BETA1",
        "BETA2",
        "EPSILON",
        "MOMENTUM",
        "RHO",
        "NESTEROV",
    ] {
        assert!(
            first.contains(&format!("override {constant}:")),
            "{constant}"
        );
    }
}
