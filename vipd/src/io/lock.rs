//! Lock files that say which vipd owns something, and that the kernel releases when that
//! vipd dies.
//!
//! A lock is an exclusive `flock` (std's [`File::try_lock`]) on an open file: the kernel
//! drops it when the last descriptor closes, also on SIGKILL, so a crashed vipd never
//! blocks its successor while a live one always does. The file holds a short text
//! (`pid=.. mode=..`) for the error a second vipd prints and for the successor's
//! takeover. The file itself stays after unlocking: removing it would race with a
//! process that opened it and waits to lock it.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Takes an exclusive lock on `file` without waiting: `Ok(true)` when taken, `Ok(false)`
/// when another open file (another process, or another `open` of the same path) holds
/// it. The lock lasts until `file` is closed.
pub fn try_lock_file(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// An open, exclusively locked lock file.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

/// What [`LockFile::try_acquire`] found.
#[derive(Debug)]
pub enum LockAttempt {
    /// The lock is ours.
    Acquired {
        /// The lock, held until dropped.
        lock: LockFile,
        /// What the previous holder (a process that is gone) wrote, or "" for a new
        /// file.
        previous: String,
    },
    /// Another live process holds the lock.
    Held {
        /// What the holder wrote into the file, trimmed ("" if it wrote nothing yet).
        holder: String,
    },
}

impl LockFile {
    /// Opens `path` (creating it and its directory) and locks it without waiting.
    pub fn try_acquire(path: &Path) -> io::Result<LockAttempt> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !try_lock_file(&file)? {
            let mut holder = String::new();
            // The holder's record is for the message only; a failed read leaves it empty.
            let _ = file.read_to_string(&mut holder);
            return Ok(LockAttempt::Held {
                holder: holder.trim().to_owned(),
            });
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous)?;
        Ok(LockAttempt::Acquired {
            lock: LockFile {
                file,
                path: path.to_owned(),
            },
            previous,
        })
    }

    /// Replaces the file's contents with `text` (who holds the lock, and anything the
    /// successor must know).
    pub fn record(&mut self, text: &str) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("vipd-lock-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn second_opener_sees_the_holder_until_the_lock_is_dropped() {
        let dir = TempDir::new("holder");
        // The directory does not exist yet: try_acquire makes it.
        let path = dir.0.join("sub").join("eth0.lock");
        let LockAttempt::Acquired { mut lock, previous } =
            LockFile::try_acquire(&path).expect("first")
        else {
            panic!("a fresh lock file was held");
        };
        assert_eq!(previous, "");
        assert_eq!(lock.path(), path);
        lock.record("pid=1 mode=generic\n").expect("record");
        // flock locks belong to the open file, so a second open in this same process
        // is refused like another process would be.
        match LockFile::try_acquire(&path).expect("second") {
            LockAttempt::Held { holder } => assert_eq!(holder, "pid=1 mode=generic"),
            LockAttempt::Acquired { .. } => panic!("the lock was taken twice"),
        }
        drop(lock);
        match LockFile::try_acquire(&path).expect("third") {
            LockAttempt::Acquired { previous, .. } => {
                assert_eq!(previous, "pid=1 mode=generic\n")
            }
            LockAttempt::Held { .. } => panic!("a dropped lock was still held"),
        }
    }

    #[test]
    fn record_replaces_a_longer_text() {
        let dir = TempDir::new("record");
        let path = dir.0.join("x.lock");
        let LockAttempt::Acquired { mut lock, .. } = LockFile::try_acquire(&path).expect("lock")
        else {
            panic!("held");
        };
        lock.record("pid=123456 mode=generic\n").expect("first");
        lock.record("pid=7\n").expect("second");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "pid=7\n");
    }

    #[test]
    fn try_lock_file_reports_contention_as_false() {
        let dir = TempDir::new("raw");
        std::fs::create_dir_all(&dir.0).expect("dir");
        let path = dir.0.join("raw.lock");
        let first = File::create(&path).expect("create");
        let second = File::open(&path).expect("open");
        assert!(try_lock_file(&first).expect("first"));
        assert!(!try_lock_file(&second).expect("second"));
        drop(first);
        assert!(try_lock_file(&second).expect("after drop"));
    }
}
