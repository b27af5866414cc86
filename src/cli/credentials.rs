//! The tokens `ferry login` keeps: `$XDG_CONFIG_HOME/ferry/credentials` (else
//! `~/.config/ferry/credentials`), a JSON map of server URL to token, readable by its owner
//! only (mode 0600, in a 0700 directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::CliError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Credentials {
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    token: String,
}

/// Where the credentials file is.
pub fn path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    CliError::bad_input("neither XDG_CONFIG_HOME nor HOME is set")
                        .with_hint("set FERRY_TOKEN instead of `ferry login`")
                })?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("ferry").join("credentials"))
}

/// The token kept for `server`, if any.
pub fn token_for(server: &str) -> Result<Option<String>, CliError> {
    Ok(load()?.servers.remove(server).map(|e| e.token))
}

/// Keeps `token` for `server`, replacing an earlier one. Returns the file's path.
pub fn save(server: &str, token: &str) -> Result<PathBuf, CliError> {
    let mut credentials = load()?;
    credentials.servers.insert(
        server.to_string(),
        Entry {
            token: token.to_string(),
        },
    );
    let path = path()?;
    let dir = path
        .parent()
        .expect("the credentials file is inside a directory");
    let failed = |what: &str, err: std::io::Error| {
        CliError::failed(format!("failed to {what} {}: {err}", path.display()))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed("create the directory of", e))?;
    let text = serde_json::to_string_pretty(&credentials).expect("credentials encode as JSON");
    let temp = dir.join(".credentials.tmp");
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| failed("write", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| failed("write", e))?;
    std::fs::rename(&temp, &path).map_err(|e| failed("write", e))?;
    Ok(path)
}

fn load() -> Result<Credentials, CliError> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Credentials::default());
        }
        Err(err) => {
            return Err(CliError::failed(format!(
                "failed to read {}: {err}",
                path.display()
            )));
        }
    };
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    if mode & 0o077 != 0 {
        return Err(CliError::bad_input(format!(
            "{} is readable by others (mode {mode:o}); it holds tokens",
            path.display()
        ))
        .with_hint(format!("chmod 600 {}", path.display())));
    }
    serde_json::from_str(&text).map_err(|err| {
        CliError::bad_input(format!("{} is not valid: {err}", path.display()))
            .with_hint("remove it and run `ferry login URL` again")
    })
}
