//! Shared test helpers: the real dataset (loaded once per test binary), a quickly trained CPU model,
//! running the `fmnist` binary, and opening a GPU or skipping. A missing adapter prints
//! `skipped: no adapter` and the test passes, unless FMNIST_REQUIRE_GPU=1 (set by `make test` and CI,
//! which have lavapipe): then it fails. FMNIST_ADAPTER picks the adapter by name substring, as
//! `--adapter` does.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::data::Dataset;
use fmnist::gpu::GpuContext;
use fmnist::gpu::context::Needs;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::{FitResult, fit};

/// The real Fashion-MNIST, loaded once per test binary. Tests that need it fail with the fix when absent.
pub fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        fmnist::data::locate_and_load(None)
            .unwrap_or_else(|e| panic!("{e:#}: these tests need the real data (run `make setup`)"))
    })
}

/// A model trained for 600 steps (about a third of an epoch, ~0.3 s): right often enough to be useful,
/// wrong often enough that every figure has mistakes to show.
pub fn quick_model(ds: &Dataset) -> (CpuBackend, FitResult) {
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(600),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    let mut backend = CpuBackend::new(spec, params, cfg.optimizer, cfg.batch_size);
    let result = fit(&mut backend, &ds.train, &ds.test, &cfg, &mut Silent).unwrap();
    (backend, result)
}

/// The Python of the environment `make setup` installs (FMNIST_ONNX_PYTHON, else
/// ~/.cache/fmnist-onnx/bin/python) if it imports `modules` (e.g. `"onnxruntime, numpy"`).
pub fn cached_python(modules: &str) -> Option<std::path::PathBuf> {
    let python = std::env::var_os("FMNIST_ONNX_PYTHON")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".cache/fmnist-onnx/bin/python"))
        })?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// Runs the release `fmnist` binary with `args`.
pub fn fmnist(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(args)
        .output()
        .expect("the fmnist binary runs")
}

/// Runs the release `fmnist` binary with `args` in the folder `cwd`.
pub fn fmnist_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("the fmnist binary runs")
}

/// Starts the `fmnist` binary with `args`, its stdout piped to the test.
pub fn spawn_fmnist(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fmnist binary starts")
}

/// Reads `child`'s stdout until a line contains `marker`; returns the lines read and the rest of the
/// stream. Panics when the stream ends first.
pub fn read_until(child: &mut Child, marker: &str) -> (Vec<String>, BufReader<ChildStdout>) {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("stdout reads");
        assert!(
            n > 0,
            "no `{marker}` before the output ended:\n{}",
            lines.join("")
        );
        let found = line.contains(marker);
        lines.push(line);
        if found {
            return (lines, reader);
        }
    }
}

/// Sends `signal` to a child process.
#[cfg(unix)]
pub fn send_signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child this test started and has not waited for.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill({}, {signal}) failed", child.id());
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number after `key` on the last line that has it, e.g. `Test accuracy: 0.8512`.
pub fn number_after(text: &str, key: &str) -> f64 {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no `{key}` in output:\n{text}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{key}` in `{line}`"))
}

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
pub fn assert_all_pass(what: &str, cases: &[fmnist::check::CaseResult]) {
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

/// A finished `fmnist` process: its output, its peak memory and how long it ran.
pub struct Measured {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident memory (`VmHWM` in /proc/PID/status, the highest value seen), in MB.
    pub peak_mb: f64,
    pub seconds: f64,
}

impl Measured {
    /// The `error:` lines of stderr.
    pub fn errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }
}

/// `VmHWM` of process `pid` in kB, while it runs.
#[cfg(unix)]
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the `fmnist` binary with `args` and the extra environment `envs` under a data-segment limit of
/// `limit_mb` (RLIMIT_DATA: heap and private writable mappings), so a process that tries to take more
/// fails instead of succeeding slowly; its peak memory is sampled from /proc every 2 ms (wait4's
/// `ru_maxrss` would include this test process's own peak, inherited through fork and exec). A process
/// still running after `HANG_SECONDS` is killed and the test fails: that bound only catches hangs; the
/// measured time is printed.
#[cfg(unix)]
pub fn run_measured(args: &[&str], envs: &[(&str, &str)], limit_mb: u64) -> Measured {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    const HANG_SECONDS: u64 = 20;
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let limit = limit_mb << 20;
    let mut command = Command::new(env!("CARGO_BIN_EXE_fmnist"));
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("the fmnist binary starts");
    let started = Instant::now();
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(HANG_SECONDS) {
            child.kill().unwrap();
            panic!("fmnist {args:?} still ran after {HANG_SECONDS} s: killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let seconds = started.elapsed().as_secs_f64();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    };
    use std::os::unix::process::ExitStatusExt;
    let m = Measured {
        code: status.code(),
        signal: status.signal(),
        stdout: read(out),
        stderr: read(err),
        peak_mb: peak_kb as f64 / 1024.0,
        seconds,
    };
    eprintln!(
        "fmnist {}: exit {:?}, peak {:.1} MB, {:.2} s",
        args.join(" "),
        m.code,
        m.peak_mb,
        m.seconds
    );
    m
}

/// A valid tiny dataset in `dir` (3 train, 2 test samples), gzip-compressed; `test_count` images and
/// labels in the test split instead of 2 when given (0: an empty split).
pub fn tiny_data(dir: &Path, test_count: Option<u32>) {
    use std::io::Write;
    let gzip = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let images = |n: u32| fmnist::data::encode_idx(3, &[n, 28, 28], &vec![7u8; n as usize * 784]);
    let labels = |n: u32| fmnist::data::encode_idx(1, &[n], &vec![1u8; n as usize]);
    let t = test_count.unwrap_or(2);
    for (name, bytes) in [
        (fmnist::data::TRAIN_IMAGES, images(3)),
        (fmnist::data::TRAIN_LABELS, labels(3)),
        (fmnist::data::TEST_IMAGES, images(t)),
        (fmnist::data::TEST_LABELS, labels(t)),
    ] {
        std::fs::write(dir.join(name), gzip(&bytes)).unwrap();
    }
}

/// A small model (hidden 8, seed 1) saved in `dir`.
pub fn small_model(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("small.safetensors");
    let spec = MlpSpec::fashion(&[8]).unwrap();
    let params = glorot_init(&spec, 1);
    fmnist::checkpoint::save(&path, &spec, &params, &Default::default()).unwrap();
    path
}
