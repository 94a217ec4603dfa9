//! Advisory locks between processes: one writer per file.
//!
//! [`FileLock::acquire`] takes an exclusive `flock` on a lock file (created with
//! `O_NOFOLLOW`, holding the owner's process id) without waiting: a second process gets
//! [`LockError::InUse`] with the holder's id. The kernel drops a `flock` when its holder dies, so
//! the lock of a process that was killed is simply taken over. Dropping the lock removes the
//! lock file first and releases the `flock` after, and an acquirer checks, once it holds the
//! `flock`, that the file it locked is still the one at the path (else it locked a file another
//! process just removed, and tries again): two processes never both hold a lock on one path.
//!
//! Within one process a lock is re-entrant: acquiring a path this process already holds counts
//! up and shares the one `flock` (an `flock` on a second descriptor of the same file would
//! conflict with the first).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("in use by process {}", pid.map_or_else(|| "(unknown)".to_string(), |p| p.to_string()))]
    InUse {
        /// The holder's process id, when its lock file says.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock it: {0}")]
    Io(#[from] io::Error),
}

struct Held {
    /// Kept open for its `flock`, which closing it releases.
    _file: File,
    count: usize,
}

/// The locks this process holds, by lock-file path (made absolute).
static HELD: Mutex<BTreeMap<PathBuf, Held>> = Mutex::new(BTreeMap::new());

/// An exclusive lock on a lock file, released (and the file removed) when the last holder in
/// this process drops it.
#[derive(Debug)]
pub struct FileLock {
    key: PathBuf,
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    let dir = super::parent_dir(path).canonicalize()?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("a lock file needs a file name"))?;
    Ok(dir.join(name))
}

impl FileLock {
    /// Takes the lock at `lock_path` (creating the file) or fails at once: never waits.
    pub fn acquire(lock_path: &Path) -> Result<Self, LockError> {
        let key = absolute(lock_path)?;
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.get_mut(&key) {
            h.count += 1;
            return Ok(Self { key });
        }
        let file = lock_new(&key)?;
        held.insert(
            key.clone(),
            Held {
                _file: file,
                count: 1,
            },
        );
        Ok(Self { key })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.key
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        let Some(h) = held.get_mut(&self.key) else {
            return;
        };
        h.count -= 1;
        if h.count == 0 {
            // Removed while still locked, so that nobody locks a file about to vanish; the
            // `flock` goes with the descriptor.
            let _ = std::fs::remove_file(&self.key);
            held.remove(&self.key);
        }
    }
}

/// Creates or opens the lock file, locks it without waiting, checks it is still the file at
/// the path, and writes this process's id into it.
#[cfg(unix)]
fn lock_new(path: &Path) -> Result<File, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    for _ in 0..16 {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("the lock file is not a regular file").into());
        }
        // SAFETY: flock on a descriptor this function owns.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } != 0
        {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                // The holder writes its id right after locking; read again once if it has not.
                let pid = holder(&mut file).or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    holder(&mut file)
                });
                return Err(LockError::InUse { pid });
            }
            return Err(e.into());
        }
        match std::fs::symlink_metadata(path) {
            Ok(now) if super::same_file(&now, &meta) => {
                file.set_len(0)?;
                file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
                return Ok(file);
            }
            // The holder removed it between our open and our lock: lock the new one.
            _ => continue,
        }
    }
    Err(io::Error::other("the lock file keeps being replaced").into())
}

#[cfg(not(unix))]
fn lock_new(path: &Path) -> Result<File, LockError> {
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

/// The process id a lock file holds (its first line), when it reads as one.
fn holder(file: &mut File) -> Option<u32> {
    use std::io::{Seek, SeekFrom};
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_reentrant_in_a_process_and_removed_by_its_last_holder() {
        let dir = std::env::temp_dir().join(format!("reslab-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".x.lock");
        let a = FileLock::acquire(&path).unwrap();
        let b = FileLock::acquire(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        drop(a);
        assert!(path.exists(), "still held by b");
        drop(b);
        assert!(!path.exists(), "the last holder removes it");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
