//! The exclusive lock on `--data-path` (Go `internal/dirlock`): two nsqd writing the same diskqueue files
//! would corrupt them, so the second one refuses to start.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;

/// Holds the lock until dropped (the OS also drops it when the process dies, so a crash never leaves a stale
/// lock behind).
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Takes a non-blocking exclusive `flock` on the directory itself, as Go does.
    pub fn lock(path: &Path) -> io::Result<Self> {
        let dir = File::open(path)?;
        match dir.try_lock() {
            Ok(()) => Ok(Self { _dir: dir }),
            Err(TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "failed to lock data-path: cannot flock directory {} - resource temporarily \
                     unavailable (possibly in use by another instance of nsqd)",
                    path.display()
                ),
            )),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::lock(dir.path()).unwrap();
        let err = DirLock::lock(dir.path()).unwrap_err();
        assert!(err
            .to_string()
            .contains("(possibly in use by another instance of nsqd)"));
        drop(first);
        DirLock::lock(dir.path()).unwrap();
    }
}
