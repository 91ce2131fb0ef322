//! The IDX reader: a regular file, gzip-compressed (one or several members, as `cat a.gz b.gz` or bgzip
//! make) or plain, read as a stream only as far as its header declares, then checked for trailing data.
//! The declared size is checked against `limits::MAX_IDX_SAMPLES` before anything is allocated, so a
//! small gzip holding gigabytes of zeros is refused after reading a few bytes past the promised data.
//! Every malformed case has its own `IdxError`; tests/data_errors.rs builds each one, tests/bombs.rs
//! the bombs, tests/fuzz_parsers.rs mutates valid files.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::files::{FileError, open_regular};
use crate::limits::MAX_IDX_SAMPLES;

use super::{IMAGE_SIDE, NUM_CLASSES};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// How much trailing data is counted before the count is reported as "at least".
const TRAILING_COUNTED: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: file not found")]
    Missing { path: PathBuf },
    /// `error` is part of the message, not a cause, so the OS error is printed once.
    #[error("{path}: {error}")]
    File { path: PathBuf, error: FileError },
    #[error(
        "{path}: not a gzip file (the name ends in .gz but the content does not start with the gzip magic 1f 8b)"
    )]
    NotGzip { path: PathBuf },
    #[error("{path}: corrupt gzip data: {error}")]
    CorruptGzip {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} (an IDX {what} file)"
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{path}: header too short: {len} bytes, an IDX {what} header needs {needed}")]
    ShortHeader {
        path: PathBuf,
        len: usize,
        needed: usize,
        what: &'static str,
    },
    #[error("{path}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    BadDims {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },
    #[error(
        "{path}: the header declares {count} {what}, more than the {MAX_IDX_SAMPLES} fmnist reads from one file"
    )]
    TooMany {
        path: PathBuf,
        count: u64,
        what: &'static str,
    },
    #[error("{path}: the header declares no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error(
        "{path}: truncated: the header promises {expected} bytes of data, the file holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{path}: {}{extra} bytes after the {expected} bytes the header promises", if *at_least { "at least " } else { "" })]
    TrailingBytes {
        path: PathBuf,
        expected: usize,
        extra: usize,
        at_least: bool,
    },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
    #[error("{path}: label {label} at index {index} is not a class (0-9)")]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: u8,
    },
}

/// Which IDX file: 28x28 images (idx3) or class labels (idx1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    Images,
    Labels,
}

impl IdxKind {
    fn magic(self) -> u32 {
        match self {
            IdxKind::Images => IMAGES_MAGIC,
            IdxKind::Labels => LABELS_MAGIC,
        }
    }
    fn what(self) -> &'static str {
        match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        }
    }
}

/// Reads an idx3-ubyte file of 28x28 images; returns the pixels, `(count, 784)` row-major.
pub fn read_idx_images(path: &Path) -> Result<Vec<u8>, IdxError> {
    read_idx(path, IdxKind::Images)
}

/// Reads an idx1-ubyte label file; every label must be a class index.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    read_idx(path, IdxKind::Labels)
}

/// Reads the regular file at `path`, gunzipped when its name ends in `.gz`.
pub fn read_idx(path: &Path, kind: IdxKind) -> Result<Vec<u8>, IdxError> {
    let (file, size) = open_regular(path).map_err(|error| match error {
        FileError::Missing => IdxError::Missing {
            path: path.to_path_buf(),
        },
        error => IdxError::File {
            path: path.to_path_buf(),
            error,
        },
    })?;
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let plain_size = if gzip { None } else { Some(size) };
    parse_idx_stream(path, file, plain_size, kind)
}

/// Parses an IDX stream `raw` (named `path` in errors). `plain_size` is the byte count of an
/// uncompressed stream, `None` for gzip. In-process entry point of the fuzz tests.
pub fn parse_idx_stream(
    path: &Path,
    raw: impl Read,
    plain_size: Option<u64>,
    kind: IdxKind,
) -> Result<Vec<u8>, IdxError> {
    let mut raw = BufReader::new(raw);
    let data = match plain_size {
        Some(size) => read_body(path, &mut raw, Some(size), kind, |error| IdxError::File {
            path: path.to_path_buf(),
            error: FileError::Io(error),
        })?,
        None => {
            let head = raw.fill_buf().map_err(|error| IdxError::File {
                path: path.to_path_buf(),
                error: FileError::Io(error),
            })?;
            if !head.starts_with(&[0x1f, 0x8b]) {
                return Err(IdxError::NotGzip {
                    path: path.to_path_buf(),
                });
            }
            let mut gz = MultiGzDecoder::new(raw);
            read_body(path, &mut gz, None, kind, |error| IdxError::CorruptGzip {
                path: path.to_path_buf(),
                error,
            })?
        }
    };
    if kind == IdxKind::Labels
        && let Some(index) = data.iter().position(|&l| l as usize >= NUM_CLASSES)
    {
        return Err(IdxError::BadLabel {
            path: path.to_path_buf(),
            index,
            label: data[index],
        });
    }
    Ok(data)
}

/// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Checks the header (big-endian magic, then one u32 per dimension), then reads exactly the data it
/// declares and checks that nothing follows. `size` is the stream's length when known (plain files).
fn read_body(
    path: &Path,
    r: &mut impl Read,
    size: Option<u64>,
    kind: IdxKind,
    io_error: impl Fn(std::io::Error) -> IdxError,
) -> Result<Vec<u8>, IdxError> {
    let (magic, what) = (kind.magic(), kind.what());
    let rank = (magic & 0xff) as usize;
    let needed = 4 + 4 * rank;
    let mut header = [0u8; 16];
    let len = read_full(r, &mut header[..needed]).map_err(&io_error)?;
    let short = || IdxError::ShortHeader {
        path: path.to_path_buf(),
        len,
        needed,
        what,
    };
    if len < 4 {
        return Err(short());
    }
    let word = |i: usize| u32::from_be_bytes(header[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    if word(0) != magic {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            found: word(0),
            expected: magic,
            what,
        });
    }
    if len < needed {
        return Err(short());
    }
    let dims: Vec<u64> = (1..=rank).map(|i| word(i) as u64).collect();
    if rank == 3 && (dims[1] != IMAGE_SIDE as u64 || dims[2] != IMAGE_SIDE as u64) {
        return Err(IdxError::BadDims {
            path: path.to_path_buf(),
            rows: dims[1] as usize,
            cols: dims[2] as usize,
        });
    }
    let count = dims[0];
    if count > MAX_IDX_SAMPLES {
        return Err(IdxError::TooMany {
            path: path.to_path_buf(),
            count,
            what,
        });
    }
    if count == 0 {
        return Err(IdxError::Empty {
            path: path.to_path_buf(),
            what,
        });
    }
    // Within usize: the count is bounded above.
    let expected = dims.iter().product::<u64>() as usize;
    if let Some(size) = size {
        // A plain file's size says at once whether the data is all there.
        let found = size.saturating_sub(needed as u64);
        if found < expected as u64 {
            return Err(IdxError::Truncated {
                path: path.to_path_buf(),
                expected,
                found: found as usize,
            });
        }
    }
    let mut data = vec![0u8; expected];
    let found = read_full(r, &mut data).map_err(&io_error)?;
    if found < expected {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    let (extra, at_least) = count_trailing(r).map_err(&io_error)?;
    if extra > 0 {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: extra as usize,
            at_least,
        });
    }
    Ok(data)
}

/// Bytes left in the stream, counted up to `TRAILING_COUNTED` (then `at_least` is true): a gzip bomb
/// is not inflated to the end to say how large it is.
fn count_trailing(r: &mut impl Read) -> std::io::Result<(u64, bool)> {
    let mut buf = [0u8; 8192];
    let mut extra = 0u64;
    loop {
        let n = read_full(r, &mut buf)?;
        extra += n as u64;
        if n < buf.len() {
            return Ok((extra, false));
        }
        if extra >= TRAILING_COUNTED {
            return Ok((extra, true));
        }
    }
}

/// Serialises an IDX file (the inverse of the reader); tests and the sample generators use it.
pub fn encode_idx(magic_rank: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, magic_rank];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
