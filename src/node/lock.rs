//! One node per data directory: an exclusive lock on `<dir>/LOCK`.
//!
//! Two nodes on one directory write the same log and hard state; issue 11
//! saw a second `replab node` run beside the first while the failure
//! detectors flapped. The lock is `flock(2)`: the kernel releases it when
//! the holder's file is closed, which happens when the node stops, when its
//! tasks are dropped (an in-process crash) and when its process dies,
//! however it dies, so a stale LOCK file never keeps a node out. `flock`
//! rather than `fcntl` locks: those are per process, so a second node in the
//! same process would get the lock, and closing any descriptor of the file
//! would drop it.
//!
//! The file holds the holder's pid, for the message a refused node prints.
//! It is left in place when the lock is released: removing it could let two
//! nodes lock two different files of the same name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "LOCK";

/// Held while a node uses its directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    // Never read: holding the open file is what holds the lock.
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {} is in use by another node: {holder} holds its lock ({}). Stop that node first, or \
         give this one a directory of its own (cluster.data_dir, or the member's data_dir)",
        dir.display(), path.display()
    )]
    Held { dir: PathBuf, path: PathBuf, holder: Holder },
    #[error("cannot use the data directory {}: cannot {action}: {source}", dir.display())]
    Io { dir: PathBuf, action: String, source: std::io::Error },
}

/// Who holds a lock, as far as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Pid(u32),
    /// The holder has not written its pid yet, or the file is not ours.
    Unknown,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Pid(pid) if *pid == std::process::id() => {
                write!(f, "this process (pid {pid}) already runs a node that")
            }
            Holder::Pid(pid) => write!(f, "process {pid}"),
            Holder::Unknown => f.write_str("a process whose pid is not recorded"),
        }
    }
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock, or says who has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let io = |action: &str, source| LockError::Io { dir: dir.to_path_buf(), action: action.to_string(), source };
        if dir.exists() && !dir.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "it is not a directory");
            return Err(io("use it", source));
        }
        std::fs::create_dir_all(dir).map_err(|e| io("create it", e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&format!("open {}", path.display()), e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok()) {
                    Some(pid) => Holder::Pid(pid),
                    None => Holder::Unknown,
                };
                return Err(LockError::Held { dir: dir.to_path_buf(), path, holder });
            }
            return Err(io(&format!("lock {}", path.display()), err));
        }
        let record = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        };
        record(&mut file).map_err(|e| io(&format!("write {}", path.display()), e))?;
        Ok(DirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node-1");
        let first = DirLock::acquire(&node).unwrap();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap().trim(), std::process::id().to_string());
        let err = DirLock::acquire(&node).unwrap_err();
        assert!(matches!(&err, LockError::Held { holder: Holder::Pid(p), .. } if *p == std::process::id()), "{err}");
        let text = err.to_string();
        assert!(text.contains("node-1") && text.contains(&format!("pid {}", std::process::id())), "{text}");
        drop(first);
        DirLock::acquire(&node).expect("the lock is free once its holder is gone");
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node-1");
        std::fs::write(&file, b"not a directory").unwrap();
        let err = DirLock::acquire(&file).unwrap_err().to_string();
        assert!(err.contains("node-1") && err.contains("not a directory"), "{err}");
    }
}
