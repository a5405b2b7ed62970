//! SQLite serves one process: the lock that keeps a second process off the database file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::StoreError;

/// SQLite serves one process: a second `serve` on the same file would run its own
/// processor and scheduler on the same rows, unaware of the first's graph and claims. So
/// an open store holds an exclusive lock on `<database>.lock`, which the kernel drops when
/// the process ends however it ends, and a second process is refused at start. Stores of
/// one process share the lock: tests, and a restart within a process, open a file again
/// while an earlier store of it may still be closing.
pub(super) struct ProcessLock {
    /// The lock file's canonical path, its key in [`PROCESS_LOCKS`].
    key: PathBuf,
    /// Holds the lock; closing it releases the lock.
    file: Option<std::fs::File>,
}

/// The locks this process holds, by lock file.
static PROCESS_LOCKS: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<ProcessLock>)>> =
    std::sync::Mutex::new(Vec::new());

impl ProcessLock {
    /// Locks `database` for this process (nothing for an in-memory database), or says
    /// which file another process holds.
    pub(super) fn acquire(database: &Path) -> Result<Option<Arc<Self>>, StoreError> {
        if database.as_os_str().is_empty() || database == Path::new(":memory:") {
            return Ok(None);
        }
        let mut path = database.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| {
                StoreError::Url(format!(
                    "cannot create the lock file {}: {err}",
                    path.display()
                ))
            })?;
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let mut held = PROCESS_LOCKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = held
            .iter()
            .find(|(held_key, _)| *held_key == key)
            .and_then(|(_, lock)| lock.upgrade())
        {
            return Ok(Some(lock));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse(format!(
                    "{} is in use by another process (it holds {}): SQLite serves one \
                     process at a time. Stop the other `serve`, or run several replicas on \
                     PostgreSQL (storage.url / DATABASE_URL = postgres://...)",
                    database.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(StoreError::Url(format!(
                    "cannot lock {}: {err}",
                    path.display()
                )));
            }
        }
        let lock = Arc::new(Self {
            key: key.clone(),
            file: Some(file),
        });
        held.retain(|(_, lock)| lock.strong_count() > 0);
        held.push((key, Arc::downgrade(&lock)));
        Ok(Some(lock))
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        // The file is closed (and the lock released) under the registry's mutex, so that
        // a store of this process opening the file meanwhile never finds it locked by us.
        let mut held = PROCESS_LOCKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|(key, lock)| *key != self.key && lock.strong_count() > 0);
        drop(self.file.take());
    }
}
