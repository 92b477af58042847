use std::path::{Path, PathBuf};

/// Everything the log can refuse or fail with. Every variant names the
/// file (and offset, for corruption) so an operator can find the problem.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },

    /// fdatasync failed. The kernel may already have dropped the dirty
    /// pages, so retrying could report success for data that is gone
    /// (the 2018 PostgreSQL "fsyncgate"). The log stops accepting work.
    #[error("fdatasync failed on {}: {source}; the log is closed, restart the node to recover from disk", path.display())]
    SyncFailed { path: PathBuf, source: std::io::Error },

    #[error("the log is closed after an earlier fatal error: {0}")]
    Poisoned(String),

    #[error("corrupt log: {} at byte offset {offset}: {reason}", path.display())]
    Corrupt { path: PathBuf, offset: u64, reason: String },

    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),

    #[error("record of {size_bytes} bytes is above max_record_bytes {max_bytes}")]
    RecordTooLarge { size_bytes: usize, max_bytes: u32 },

    #[error("index {index} is outside the log [{first}, {last}]")]
    OutOfRange { index: u64, first: u64, last: u64 },

    #[error("invalid log options: {0}")]
    BadOptions(String),
}

impl WalError {
    /// True if the log must not be used any more.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WalError::SyncFailed { .. } | WalError::Poisoned(_))
    }
}

pub fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> WalError {
    WalError::Io { op, path: path.to_path_buf(), source }
}
