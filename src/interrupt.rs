//! Ctrl-C and SIGTERM during training: the first one sets a flag that the fit loop reads between steps
//! (it then saves and exits 130, or 143 for SIGTERM, the shell's 128 + signal); a second one exits at
//! once with that code. signal-hook keeps the handlers async-signal-safe (an atomic store, `_exit`).
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
