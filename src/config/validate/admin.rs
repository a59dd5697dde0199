//! `admin:` → the admin listener address and `token_env`, the environment variable that holds
//! the bearer token `/sessions*` require. Only the variable's name is checked here; its value
//! is read when the runtime is built (`crate::runtime`), like a JWT key's `secret_env`, so that
//! `wsgate check` and a start both refuse an unset or empty one.

use std::net::SocketAddr;

use super::Errors;
use super::jwt::env_var_name;
use crate::config::raw::RawAdmin;

/// `(bind, token_env)`; each `None` when absent or wrong (reported).
pub(super) fn admin(
    raw: Option<RawAdmin>,
    errs: &mut Errors,
) -> (Option<SocketAddr>, Option<String>) {
    let Some(raw) = raw else {
        return (None, None);
    };
    let bind = match raw.bind.value.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let msg = format!(
                "`{}` is not an IP:PORT address (e.g. `127.0.0.1:9090`)",
                raw.bind.value
            );
            errs.at(&raw.bind.referenced, "admin.bind", msg);
            None
        }
    };
    let token_env = (raw.token_env).and_then(|t| errs.check(&t, "admin.token_env", env_var_name));
    (bind, token_env)
}
