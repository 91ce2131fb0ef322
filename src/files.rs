//! Opening the files a person names (data files, checkpoints, photos): only regular files are read, as
//! a FIFO would block forever and `/dev/zero` never ends, and never more than a stated limit. Errors
//! name the problem once (the OS error is not also chained as a cause). Tested by tests/hostile_files.rs.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::limits::human_bytes;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file not found")]
    Missing,
    #[error("not a regular file ({0}); fmnist reads only regular files")]
    NotRegular(&'static str),
    /// The OS error is part of the message, not a cause, so it is printed once.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("{}, more than the {} fmnist reads as {what}", human_bytes(*.size), human_bytes(*.limit))]
    TooLarge {
        size: u64,
        limit: u64,
        what: &'static str,
    },
}

impl FileError {
    fn io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => FileError::Missing,
            _ => FileError::Io(e),
        }
    }
}

/// Opens `path` for reading if it is a regular file (symlinks to one are fine); returns it and its size.
/// A FIFO is opened without blocking and then refused.
pub fn open_regular(path: &Path) -> Result<(File, u64), FileError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK returns at once, and
        // regular files ignore it.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(FileError::io)?;
    let meta = file.metadata().map_err(FileError::io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind(&meta)));
    }
    Ok((file, meta.len()))
}

/// The whole of the regular file at `path`, refused when larger than `limit` bytes.
pub fn read_regular(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_regular(path)?;
    if size > limit {
        return Err(FileError::TooLarge { size, limit, what });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // A file that grows while it is read is still cut at the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            limit,
            what,
        });
    }
    Ok(bytes)
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}
