//! Atomic file output: every file fmnist writes goes to a temporary sibling first and is renamed into
//! place, so an interrupted run never leaves a half-written model, CSV or PNG behind.
//!
//! The temporary file is created exclusively (`O_EXCL`) under an unpredictable name in the target's
//! folder, so a planted file or symlink at a guessable name is never opened or followed; it is synced
//! before the rename and the folder after it, so a crash leaves either the old file or the new one.
//! Temp files of killed writers are removed by [`remove_stale_temps`] when a run opens its folder.
//! Tested by tests/safe_files.rs.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Every temporary file ends with this, after `.<target name>.` and random characters.
pub const TEMP_SUFFIX: &str = ".fmnist-tmp";

/// Writes `bytes` to `path` via a temporary file in the same folder (rename is atomic within a file system).
/// A symlink at `path` is replaced, never followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = (|| -> io::Result<()> {
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(TEMP_SUFFIX).rand_bytes(10);
        // The mode a plain `File::create` gives (0666 less the umask), not tempfile's private 0600:
        // models and figures are meant to be shared like any other output.
        #[cfg(unix)]
        let perms = std::os::unix::fs::PermissionsExt::from_mode(0o666);
        #[cfg(unix)]
        builder.permissions(perms);
        let mut tmp = builder.tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        // On failure the temp file is dropped, which removes it.
        tmp.persist(path).map_err(|e| e.error)?;
        sync_dir(dir)
    })();
    result.with_context(|| format!("{}: cannot write", path.display()))
}

/// Flushes a folder's entries (a rename or a new file) to disk. A no-op where folders cannot be
/// opened as files (Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Whether `name` is one of our temporary files: `.<target>.<random>.fmnist-tmp`, or the
/// `.<target>.tmp-<pid>` that earlier versions wrote.
pub fn is_temp_name(name: &str) -> bool {
    if !name.starts_with('.') {
        return false;
    }
    if name.ends_with(TEMP_SUFFIX) {
        return name.len() > 1 + TEMP_SUFFIX.len();
    }
    name.rsplit_once(".tmp-").is_some_and(|(target, pid)| {
        target.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Removes the temporary files of our naming in `dir` (left by writers that were killed), without
/// following symlinks. Call it only while no other writer can be active there (a run holds its lock).
/// Returns what was removed.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries =
        fs::read_dir(dir).with_context(|| format!("{}: cannot list the folder", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list the folder", dir.display()))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        // `file_type` does not follow symlinks: a link is removed, never its target.
        if entry.file_type().is_ok_and(|t| !t.is_dir()) {
            let path = entry.path();
            fs::remove_file(&path)
                .with_context(|| format!("{}: cannot remove a stale temp file", path.display()))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_nothing_else() {
        for yes in [
            ".model.safetensors.tmp-1234",
            ".config.json.Ab3dE9xQ1z.fmnist-tmp",
        ] {
            assert!(is_temp_name(yes), "{yes}");
        }
        for no in [
            "model.safetensors",
            ".lock",
            ".model.tmp-",
            ".model.tmp-12a",
            "x.fmnist-tmp",
            ".fmnist-tmp",
            ".tmp-12",
        ] {
            assert!(!is_temp_name(no), "{no}");
        }
    }
}
