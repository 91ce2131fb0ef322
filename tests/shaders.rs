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

#[test]
fn the_step_record_is_the_same_struct_in_every_shader_that_reads_it() {
    // softmax_xent.wgsl and adam.wgsl both read `Step` at the same dynamic offset: their fields must agree.
    let fields = |src: &str| -> Vec<String> {
        let start = src.find("struct Step {").expect("struct Step");
        let end = start + src[start..].find('}').unwrap();
        src[start..end]
            .lines()
            .skip(1)
            .map(|l| l.split("//").next().unwrap().trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(fields(SHADERS[1].1), fields(SHADERS[2].1));
    assert_eq!(
        fields(SHADERS[1].1).len(),
        std::mem::size_of::<fmnist::gpu::kernels::StepRecord>() / 4
    );
}
