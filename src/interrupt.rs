//! Ctrl-C and SIGTERM during training: the first one sets a flag that the fit loop reads between steps
//! (it then saves and exits 130, or 143 for SIGTERM, the shell's 128 + signal); a second one exits at
//! once with that code. signal-hook keeps the handlers async-signal-safe (an atomic store, `_exit`).
//! A signal the process was started with ignored stays ignored.
//! Tested end to end by tests/resume.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The signals a training run stops on, once installed.
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        for sig in [SIGINT, SIGTERM] {
            if ignored(sig) {
                // Started with the signal ignored (a background job of a script, `nohup`-like
                // wrappers): keep it that way, as shells expect.
                continue;
            }
            // Registered first, so it sees the flag as the previous signal left it: only a second
            // signal exits at once.
            flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stop))
                .context("cannot install a signal handler")?;
            flag::register_usize(sig, Arc::clone(&signal), sig as usize)
                .context("cannot install a signal handler")?;
            flag::register(sig, Arc::clone(&stop)).context("cannot install a signal handler")?;
        }
        Ok(Self { stop, signal })
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The signal that asked, e.g. `SIGINT`.
    pub fn signal_name(&self) -> &'static str {
        if self.signal.load(Ordering::SeqCst) == SIGTERM as usize {
            "SIGTERM"
        } else {
            "SIGINT"
        }
    }

    /// The exit code of a run stopped by that signal: 128 + its number (130 for SIGINT).
    pub fn exit_code(&self) -> u8 {
        let sig = self.signal.load(Ordering::SeqCst);
        let sig = if sig == 0 { SIGINT as usize } else { sig };
        (128 + sig) as u8
    }
}

/// Whether `sig` is ignored (SIG_IGN) in this process.
#[cfg(unix)]
fn ignored(sig: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(not(unix))]
fn ignored(_sig: i32) -> bool {
    false
}
