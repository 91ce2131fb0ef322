//! Instance -> adapter -> device. Adapter choice (`--device gpu`: best hardware adapter, else a software
//! one; `--adapter NAME`: case-insensitive substring), `WGPU_BACKEND` honoured through
//! `InstanceDescriptor::new_without_display_handle_from_env`, the optional features fmnist uses
//! (timestamp queries, for the profile) and the limits it needs, requested explicitly.
//! Tested through every GPU test (tests/common/mod.rs opens the context) and tests/cli_gpu.rs.

use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};

use crate::error::Hinted;

/// What a user needs to act when no adapter can be opened.
pub const NO_ADAPTER_HINT: &str = "`make setup` installs lavapipe (Mesa's software Vulkan driver, package \
mesa-vulkan-drivers); or train on the CPU with --device cpu";

/// One adapter as `fmnist info` and error messages describe it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: wgpu::DeviceType,
    pub timestamps: bool,
}

impl AdapterSummary {
    fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        Self {
            name: info.name,
            backend: info.backend.to_str().to_string(),
            device_type: info.device_type,
            timestamps: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }

    /// Hardware GPUs, as opposed to software rasterisers (lavapipe, WARP, SwiftShader).
    pub fn is_hardware(&self) -> bool {
        is_hardware(self.device_type)
    }

    /// `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`. A browser may keep the name to itself
    /// (WebGPU's description is often empty): `unnamed adapter (webgpu, Cpu)`.
    pub fn describe(&self) -> String {
        let name = match self.name.trim() {
            "" => "unnamed adapter",
            name => name,
        };
        format!("{name} ({}, {:?})", self.backend, self.device_type)
    }
}

/// Discrete and integrated GPUs: what `--device auto` trains on. Virtual adapters (a hypervisor's or a
/// remote desktop's) and software rasterisers are used only when asked for with `--device gpu`.
pub fn is_hardware(t: wgpu::DeviceType) -> bool {
    matches!(
        t,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
    )
}

/// Mesa prints "XDG_RUNTIME_DIR is invalid or not set" when an instance is created without one; give it
/// a private directory so the warning does not clutter every run. Native only: a browser has neither
/// Mesa nor a temporary directory (asking for one panics there).
#[cfg(not(target_arch = "wasm32"))]
fn quiet_mesa() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("fmnist-xdg-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            // SAFETY: called once, before wgpu (the only reader here) creates its instance; fmnist starts
            // no thread that reads the environment concurrently with this.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    });
}

fn instance() -> (wgpu::Instance, wgpu::Backends) {
    #[cfg(not(target_arch = "wasm32"))]
    quiet_mesa();
    let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let backends = desc.backends;
    (wgpu::Instance::new(desc), backends)
}

fn enumerate(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(adapters(instance, backends))
}

/// The adapters to choose from: every one wgpu enumerates natively; in a browser (WebGPU, which lists
/// none) the one it grants on request.
async fn adapters(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = backends;
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        instance
            .request_adapter(&options)
            .await
            .into_iter()
            .collect()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        instance.enumerate_adapters(backends).await
    }
}

/// Every adapter wgpu can see, in preference order (hardware first, conformant backends before GL).
pub fn list_adapters() -> Vec<AdapterSummary> {
    let (instance, backends) = instance();
    let mut adapters = enumerate(&instance, backends);
    adapters.sort_by_key(rank);
    adapters.iter().map(AdapterSummary::of).collect()
}

/// Lower is better: discrete, integrated, virtual, software, other; within each, Vulkan/Metal/DX12
/// before GL (the GL llvmpipe is not WebGPU-compliant).
fn rank(adapter: &wgpu::Adapter) -> (u8, u8) {
    let info = adapter.get_info();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, api)
}

/// An open device and what fmnist learned about it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// TIMESTAMP_QUERY was available and enabled.
    pub timestamps: bool,
    /// TIMESTAMP_QUERY_INSIDE_PASSES too: per-dispatch timestamps inside one pass.
    pub timestamps_inside_passes: bool,
    /// The first error wgpu reported outside an error scope (validation, out of memory, device lost):
    /// without a handler wgpu would panic; `check` turns it into an error.
    errors: Arc<Mutex<Option<String>>>,
}

/// The hint `GpuContext::open` gives when the adapter's buffers are too small for what was asked.
pub const OPEN_ADVICE: &str = "use --device cpu, or a smaller model or batch";

/// Sizes the engine needs from the device, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    pub largest_buffer: u64,
}

impl GpuContext {
    /// Opens the adapter `name` picks (or the best one) with the limits `needs` asks for.
    pub fn open(name: Option<&str>, needs: Needs) -> Result<Self> {
        Self::open_advised(name, needs, OPEN_ADVICE)
    }

    /// `open`, with `advice` as the hint when the adapter's buffers are too small for `needs` (the
    /// caller knows whether the batch or the model's width sets the size). Blocks: a native process's
    /// way of waiting for `open_async`.
    pub fn open_advised(name: Option<&str>, needs: Needs, advice: &str) -> Result<Self> {
        pollster::block_on(Self::open_async(name, needs, advice))
    }

    /// `open_advised` as a future, which a browser (wasm32, WebGPU) awaits instead of blocking.
    pub async fn open_async(name: Option<&str>, needs: Needs, advice: &str) -> Result<Self> {
        let (instance, backends) = instance();
        let mut adapters = adapters(&instance, backends).await;
        adapters.sort_by_key(rank);
        if adapters.is_empty() {
            return Err(anyhow::Error::new(Hinted::new(
                anyhow!(
                    "no GPU adapter found (backends tried: {})",
                    describe_backends(backends)
                ),
                NO_ADAPTER_HINT,
            )));
        }
        let adapter = match name {
            None => adapters.swap_remove(0),
            Some(want) => {
                let lower = want.to_lowercase();
                let Some(i) = adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&lower))
                else {
                    let names: Vec<String> = adapters
                        .iter()
                        .map(|a| AdapterSummary::of(a).describe())
                        .collect();
                    return Err(anyhow::Error::new(Hinted::new(
                        anyhow!(
                            "--adapter {want:?} matches no adapter; available: {}",
                            names.join("; ")
                        ),
                        "pass part of one of those names, or leave --adapter out to take the best one",
                    )));
                };
                adapters.swap_remove(i)
            }
        };
        Self::from_adapter(adapter, needs, advice).await
    }

    async fn from_adapter(adapter: wgpu::Adapter, needs: Needs, advice: &str) -> Result<Self> {
        let summary = AdapterSummary::of(&adapter);
        let have = adapter.limits();
        let mut limits = wgpu::Limits::downlevel_defaults();
        // Raise only the two limits the engine's buffers need, and say plainly when the adapter falls short.
        let need = needs
            .largest_buffer
            .max(limits.max_storage_buffer_binding_size);
        for (what, available) in [
            (
                "max_storage_buffer_binding_size",
                have.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", have.max_buffer_size),
        ] {
            if needs.largest_buffer > available {
                return Err(anyhow::Error::new(Hinted::new(
                    anyhow!(
                        "adapter {} offers {what} = {available} bytes but fmnist needs {}",
                        summary.describe(),
                        needs.largest_buffer
                    ),
                    advice,
                )));
            }
        }
        limits.max_storage_buffer_binding_size = need.min(have.max_storage_buffer_binding_size);
        limits.max_buffer_size = need.max(limits.max_buffer_size).min(have.max_buffer_size);
        // The first layer's operands are textures (the evaluation batch is 4096 rows tall); the
        // backend checks its sizes against this and says which texture does not fit.
        limits.max_texture_dimension_2d = have.max_texture_dimension_2d;
        // The buffer path's fused kernels bind up to 7 storage buffers (dense_tail); WebGPU's default
        // is 8, the downlevel set only 4. Ask for 8 where offered; kernels::Kernels builds those kernels
        // only when the device allows them (`Kernels::supports`).
        limits.max_storage_buffers_per_shader_stage = have
            .max_storage_buffers_per_shader_stage
            .min(crate::gpu::kernels::STORAGE_BUFFERS_WANTED)
            .max(limits.max_storage_buffers_per_shader_stage);
        let offered = adapter.features();
        let mut features = wgpu::Features::empty();
        for f in [
            wgpu::Features::TIMESTAMP_QUERY,
            wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        ] {
            if offered.contains(f) {
                features |= f;
            }
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("fmnist device"),
                required_features: features,
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                anyhow::Error::new(Hinted::new(
                    anyhow!("could not open {}: {e}", summary.describe()),
                    NO_ADAPTER_HINT,
                ))
            })?;
        let errors = Arc::new(Mutex::new(None::<String>));
        let first = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = first.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| one_line(&e.to_string()));
        }));
        let lost = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            if reason == wgpu::DeviceLostReason::Destroyed {
                return;
            }
            let mut slot = lost.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| {
                format!("the device was lost ({reason:?}): {}", one_line(&message))
            });
        });
        Ok(Self {
            errors,
            device,
            queue,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamps_inside_passes: features.contains(
                wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
            ),
            adapter: summary,
        })
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        self.check("the GPU work")
    }

    /// Blocks until submission `index` is done.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        self.check("the GPU work")
    }

    /// The error wgpu reported since the device opened, if any, as one line naming `during`.
    pub fn check(&self, during: &str) -> Result<()> {
        let slot = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            None => Ok(()),
            Some(e) => Err(anyhow!(
                "{during} failed on {}: {e}",
                self.adapter.describe()
            )),
        }
    }

    /// Runs `make` (creating buffers, pipelines, bind groups) inside validation and out-of-memory error
    /// scopes, so a failure becomes one error naming `what` instead of a panic inside wgpu.
    /// In a browser the scopes' results arrive on the event loop, which nothing here may block on:
    /// there a failure surfaces through the device's uncaptured-error handler and `check`.
    #[cfg(target_arch = "wasm32")]
    pub fn scoped<T>(&self, what: &str, make: impl FnOnce() -> Result<T>) -> Result<T> {
        let made = make()?;
        self.check(what)?;
        Ok(made)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn scoped<T>(&self, what: &str, make: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let made = make();
        let invalid = pollster::block_on(validation.pop());
        let out_of_memory = pollster::block_on(oom.pop());
        if let Some(e) = out_of_memory {
            return Err(anyhow::Error::new(Hinted::new(
                anyhow!(
                    "{what}: the GPU is out of memory: {}",
                    one_line(&e.to_string())
                ),
                "use a smaller --batch-size or model, or --device cpu",
            )));
        }
        if let Some(e) = invalid {
            return Err(anyhow!("{what}: {}", one_line(&e.to_string())));
        }
        self.check(what)?;
        made
    }
}

/// wgpu's messages span several lines (the error, then its causes): join them into one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe_backends(backends: wgpu::Backends) -> String {
    let mut names = Vec::new();
    for (flag, name) in [
        (wgpu::Backends::VULKAN, "Vulkan"),
        (wgpu::Backends::METAL, "Metal"),
        (wgpu::Backends::DX12, "DX12"),
        (wgpu::Backends::GL, "GL"),
        (wgpu::Backends::BROWSER_WEBGPU, "WebGPU"),
    ] {
        if backends.contains(flag) {
            names.push(name);
        }
    }
    if names.is_empty() {
        "none (WGPU_BACKEND selects nothing?)".to_string()
    } else {
        let mut s = names.join(", ");
        if std::env::var_os("WGPU_BACKEND").is_some() {
            s.push_str(" (from WGPU_BACKEND)");
        }
        s
    }
}
