//! Saving the registered App's credentials: a `github:` section written whole and readable
//! by the owner only.

use std::io::{self, Write};
use std::path::Path;

use super::random_hex;
use crate::github::AppRegistration;

/// Writes the credentials as a `github:` configuration section, readable by the owner
/// only: into a new temporary file beside `path`, synced, then renamed over `path`, so
/// that a crash leaves either no file or a whole one, never half a key.
pub(super) fn write_app_file(path: &Path, conversion: &AppRegistration) -> io::Result<()> {
    let mut document = serde_yaml_ng::Mapping::new();
    let mut github = serde_yaml_ng::Mapping::new();
    github.insert("app_id".into(), conversion.id.into());
    github.insert("private_key".into(), conversion.pem.expose().into());
    if let Some(secret) = &conversion.webhook_secret {
        github.insert("webhook_secret".into(), secret.expose().into());
    }
    // Both or neither: the configuration refuses one without the other.
    if let (Some(id), Some(secret)) = (&conversion.client_id, &conversion.client_secret) {
        github.insert("client_id".into(), id.as_str().into());
        github.insert("client_secret".into(), secret.expose().into());
    }
    document.insert("github".into(), github.into());
    let text = serde_yaml_ng::to_string(&document).map_err(io::Error::other)?;
    let text = format!(
        "# Written by codegen-orchestrator's /setup: the GitHub App's credentials.\n{text}"
    );
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the credentials file has no name"))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        random_hex(8)?
    ));
    let saved =
        write_private(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, path));
    if saved.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    saved?;
    sync_dir(dir)
}

/// Creates `path` (it must not exist) with mode 0600 and `bytes`, synced to disk.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // The umask may take bits away from 0600; the mode is exactly 0600 whatever it is.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// Makes a rename in `dir` durable: the directory entry is synced too.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
