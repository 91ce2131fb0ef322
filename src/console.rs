//! stdout and stderr that never panic. `println!` panics when a write fails (`> /dev/full`, a full
//! disk), which threw a finished training away; these macros record the first failure of each stream,
//! stop writing to it, and let the program go on and save its work. At the end `report_failures` says
//! what was lost on the stream that still works, and the exit code says so. A closed pipe ends the
//! process quietly through SIGPIPE (set up in main) like other command-line tools; where there is no
//! SIGPIPE it counts as a failure too. Tested by tests/output_failures.rs.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// The first write error of each stream.
static FAILED: Mutex<[Option<String>; 2]> = Mutex::new([None, None]);

#[derive(Clone, Copy)]
pub enum Stream {
    Out = 0,
    Err = 1,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Out => "stdout",
            Stream::Err => "stderr",
        }
    }
}

fn failed(stream: Stream) -> bool {
    FAILED.lock().map_or(true, |f| f[stream as usize].is_some())
}

fn record(stream: Stream, err: io::Error) {
    if let Ok(mut f) = FAILED.lock() {
        f[stream as usize].get_or_insert_with(|| err.to_string());
    }
}

/// Writes to `stream` and flushes; a failure is recorded and the stream is not written again.
pub fn write(stream: Stream, args: fmt::Arguments<'_>) {
    if failed(stream) {
        return;
    }
    let result = match stream {
        Stream::Out => {
            let mut out = io::stdout().lock();
            out.write_fmt(args).and_then(|()| out.flush())
        }
        Stream::Err => {
            let mut err = io::stderr().lock();
            err.write_fmt(args).and_then(|()| err.flush())
        }
    };
    if let Err(e) = result {
        record(stream, e);
    }
}

/// Whether any write to stdout or stderr failed.
pub fn any_failed() -> bool {
    failed(Stream::Out) || failed(Stream::Err)
}

/// Says on the stream that still works which stream failed, e.g.
/// `error: writing to stdout failed (No space left on device (os error 28)); what followed was lost`.
/// Returns whether anything failed.
pub fn report_failures() -> bool {
    let failures = FAILED.lock().map(|f| f.clone()).unwrap_or_default();
    for (stream, other) in [(Stream::Out, Stream::Err), (Stream::Err, Stream::Out)] {
        if let Some(e) = &failures[stream as usize] {
            write(
                other,
                format_args!(
                    "error: writing to {} failed ({e}); what followed was lost\n",
                    stream.name()
                ),
            );
        }
    }
    failures.iter().any(Option::is_some)
}

/// `println!` that never panics.
#[macro_export]
macro_rules! outln {
    () => { $crate::console::write($crate::console::Stream::Out, format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::write($crate::console::Stream::Out, format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::console::write($crate::console::Stream::Out, format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::console::write($crate::console::Stream::Err, format_args!("{}\n", format_args!($($arg)*)))
    };
}
