//! `admin:` → the admin listener address and `token_env`, the environment variable that holds
//! the bearer token `/sessions*` require. Only the variable's name is checked here; its value
//! is read when the runtime is built (`crate::runtime`), like a JWT key's `secret_env`, so that
//! `wsgate check` and a start both refuse an unset or empty one.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Errors;
use super::jwt::env_var_name;
use crate::config::AdminBind;
use crate::config::raw::RawAdmin;

/// `IP:PORT` or `unix:/ABSOLUTE/PATH`.
fn bind(value: &str) -> Result<AdminBind, String> {
    if let Some(path) = value.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        return if path.is_absolute() && path.file_name().is_some() {
            Ok(AdminBind::Unix(path))
        } else {
            Err(format!(
                "`{value}`: a Unix socket needs an absolute path (e.g. `unix:/run/wsgate/admin.sock`)"
            ))
        };
    }
    value
        .parse::<SocketAddr>()
        .map(AdminBind::Tcp)
        .map_err(|_| {
            format!("`{value}` is not an IP:PORT address (e.g. `127.0.0.1:9090`) or `unix:/PATH`")
        })
}

/// `(bind, token_env)`; each `None` when absent or wrong (reported).
pub(super) fn admin(
    raw: Option<RawAdmin>,
    errs: &mut Errors,
) -> (Option<AdminBind>, Option<String>) {
    let Some(raw) = raw else {
        return (None, None);
    };
    let bind = match bind(raw.bind.value.trim()) {
        Ok(bind) => Some(bind),
        Err(msg) => {
            errs.at(&raw.bind.referenced, "admin.bind", msg);
            None
        }
    };
    let token_env = (raw.token_env).and_then(|t| errs.check(&t, "admin.token_env", env_var_name));
    (bind, token_env)
}
