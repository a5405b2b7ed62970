//! The wall clock, in the unit the store and GitHub's headers use.

/// Unix time in milliseconds.
pub fn now_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as i64
}
