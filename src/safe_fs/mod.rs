//! File access that hostile paths cannot turn against the lab: bounded reads of regular files
//! only, and atomic writes through temporary files that nobody can predict or pre-create.
//!
//! A leaf module (std and libc only), used by [`runfile`](crate::runfile), [`data`](crate::data),
//! the experiments, the CLI and the UI.
//!
//! - [`open_regular`] / [`read_regular`] refuse anything that is not a regular file (a FIFO
//!   would block for ever, `/dev/zero` never ends, a directory is not data) and anything larger
//!   than the caller's cap, before reading a byte; the read itself stops at the cap even if the
//!   file grows meanwhile.
//! - [`write_atomic`] / [`write_atomic_with`] write `.NAME.tmp-PID-RANDOM` beside the target with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted file or symlink makes the create fail, never
//!   redirects it), `fsync` it, rename it over the target and `fsync` the folder. An existing
//!   target that is a symlink, a device, a FIFO or a directory is refused, not replaced.
//! - [`write_new_atomic`] does the same for a file that must not exist yet: the finished
//!   temporary file is linked to its name only if nothing is there, so it never replaces
//!   another file.
//! - Temporary files left by processes that died mid-save (`kill -9`) are removed by the next
//!   atomic write into the same folder ([`clean_stale_temps`]).
//! - [`FileLock`] (`lock.rs`): one writer per file between processes.

mod lock;

pub use lock::{FileLock, LockError};

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path is not a regular file.
    #[error("not a regular file (it is {0}); only regular files are read")]
    NotRegular(&'static str),
    /// The file is larger than the reader accepts.
    #[error("the file has {bytes} bytes, more than the {max} this reader accepts")]
    TooLarge {
        /// Its size (or the bytes read before stopping).
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// The operating system's error.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
}

/// What a non-regular file is, in words.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a plain file"
    }
}

/// Opens a regular file for reading and returns it with its length, refusing anything else and
/// anything longer than `max` bytes. Never blocks: the open is non-blocking, so a FIFO that
/// appears between the check and the open is still refused.
pub fn open_regular(path: &Path, max: u64) -> Result<(File, u64), ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            bytes: meta.len(),
            max,
        });
    }
    Ok((file, meta.len()))
}

/// Reads a whole regular file of at most `max` bytes (see [`open_regular`]).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path, max)?;
    let mut out = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(ReadError::TooLarge {
            bytes: out.len() as u64,
            max,
        });
    }
    Ok(out)
}

/// The folder a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether two metadata describe the same file (device and inode; `false` where the platform
/// cannot tell).
pub fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Refuses a target that exists and is not a regular file: writing "to" a symlink would either
/// follow it out of its folder or replace it, and a device, FIFO or directory is not a file a
/// save should replace.
pub fn check_target(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::other(
            "it is a symbolic link; refusing to write through or replace it (name its target instead)",
        )),
        Ok(meta) if !meta.is_file() => Err(io::Error::other(format!(
            "it is {}, not a regular file; refusing to replace it",
            kind_of(meta.file_type())
        ))),
        _ => Ok(()),
    }
}

/// Creates a new file that did not exist, never following a symlink at its name
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`).
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    options.open(path)
}

/// Opens an existing regular file for writing (appending at a chosen offset), refusing a symlink
/// or anything else.
pub fn open_existing_for_write(path: &Path) -> io::Result<File> {
    check_target(path)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

const TMP_MARK: &str = ".tmp-";

/// A fresh temporary name beside `path`: `.NAME.tmp-PID-RANDOM`, with 64 random bits so that no
/// other user can plant a file or symlink there in advance. Long names are shortened to keep the
/// result within the 255 bytes file systems allow.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut short: String = String::new();
    for c in name.chars() {
        if short.len() + c.len_utf8() > 180 {
            break;
        }
        short.push(c);
    }
    parent_dir(path).join(format!(
        ".{short}{TMP_MARK}{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// The process id in a temporary name `.NAME.tmp-PID-TOKEN` (TOKEN: hex digits, or the decimal
/// counter older builds used), or `None` for any other name.
fn temp_owner(file_name: &str) -> Option<u32> {
    if !file_name.starts_with('.') {
        return None;
    }
    let (_, tail) = file_name.rsplit_once(TMP_MARK)?;
    let (pid, token) = tail.split_once('-')?;
    let token_ok = !token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (token_ok && pid_ok).then(|| pid.parse().ok()).flatten()
}

/// Whether a process with this id is alive (or exists under another user).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // Signal 0 checks for existence without sending anything; EPERM means it exists.
        // SAFETY: kill with signal 0 has no effect beyond the check.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Removes the temporary files in `dir` that a process no longer alive left behind (a save
/// killed between creating and renaming its temporary file). Returns how many were removed.
/// Only names of the form `.NAME.tmp-PID-TOKEN` are touched, and only when process PID is gone.
pub fn clean_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        let is_file_or_link = entry
            .file_type()
            .is_ok_and(|t| t.is_file() || t.is_symlink());
        if is_file_or_link && !process_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes a file atomically: `fill` writes the content into a new temporary file beside `path`
/// (buffered), which is synced and renamed over the target, and the folder is synced. A crash at
/// any point leaves the old file or the new one, never a mix; a planted symlink or an existing
/// non-regular target makes it fail instead of writing anywhere else.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    check_target(path)?;
    clean_stale_temps(dir);
    let (tmp, file) = create_temp(path)?;
    let written = (|| {
        let mut w = io::BufWriter::with_capacity(1 << 16, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Writes a new file atomically like [`write_atomic_with`], but only where no file exists: the
/// finished temporary file is hard-linked to `path` (which fails if anything is there) and then
/// removed. On a file system without hard links it is renamed after checking that `path` is
/// free.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    clean_stale_temps(dir);
    let (tmp, mut file) = create_temp(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            match std::fs::symlink_metadata(path) {
                Err(n) if n.kind() == io::ErrorKind::NotFound => std::fs::rename(&tmp, path),
                _ => Err(e),
            }
        }
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    sync_dir(dir);
    Ok(())
}

/// Appends `bytes` to the regular file at `path` if it is exactly `expected_len` bytes long,
/// under an exclusive `flock` (so that two processes appending to one file take turns and the
/// second sees the first's bytes), and syncs it. Returns `false`, writing nothing, when the file
/// has another length.
pub fn append_exact(path: &Path, expected_len: u64, bytes: &[u8]) -> io::Result<bool> {
    let mut f = open_existing_for_write(path)?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when it is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if f.metadata()?.len() != expected_len {
        return Ok(false);
    }
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(expected_len))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(true)
}

/// Creates a new temporary file beside `path`, retrying on the (astronomically unlikely) clash.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = temp_path(path);
        match create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Syncs a folder so that a rename in it survives a crash; failures are ignored (some file
/// systems cannot sync folders, and the data itself is already synced).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Makes sure `dir` exists and a file can be created in it, by creating and removing a
/// temporary file, so that a run whose output folder is unusable fails before it trains
/// rather than at its first autosave.
pub fn check_writable_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a folder"));
    }
    let (tmp, file) = create_temp(&dir.join("write-check"))?;
    drop(file);
    std::fs::remove_file(&tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_with_their_owner() {
        assert_eq!(
            temp_owner(".run.reslab.json.tmp-123-00ff00ff00ff00ff"),
            Some(123)
        );
        assert_eq!(temp_owner(".run.reslab.json.tmp-77-3"), Some(77));
        assert_eq!(temp_owner("run.reslab.json.tmp-77-3"), None);
        assert_eq!(temp_owner(".run.tmp-x-3"), None);
        assert_eq!(temp_owner(".notes.txt"), None);
        let p = temp_path(Path::new("/x/a.csv"));
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(temp_owner(&name), Some(std::process::id()));
        let long = "n".repeat(250);
        let p = temp_path(&Path::new("/x").join(&long));
        assert!(p.file_name().unwrap().len() < 255);
    }
}
