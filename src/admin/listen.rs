//! The admin endpoint's socket: TCP (`IP:PORT`) or a Unix socket (`unix:/PATH`).
//!
//! A Unix socket file is made mode 0660 (owner and group: put the operators' group on the
//! directory), replaced at start when a previous process left it behind (nothing accepts on it),
//! refused when another process still accepts on it or when the path is not a socket, and
//! removed when the listener is dropped.
//!
//! Does not own serving requests (`super::serve`) or when to bind and rebind
//! (`super::server::AdminServer`).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::config::AdminBind;

/// File mode of the admin socket: read-write for the owner and the group.
pub const SOCKET_MODE: u32 = 0o660;

/// A bound admin socket.
#[derive(Debug)]
pub enum AdminListener {
    Tcp(TcpListener),
    /// The listener and its file, removed on drop.
    Unix(UnixListener, SocketFile),
}

impl From<TcpListener> for AdminListener {
    fn from(listener: TcpListener) -> Self {
        AdminListener::Tcp(listener)
    }
}

impl AdminListener {
    /// Where it listens, for logs (`127.0.0.1:9090`, `unix:/run/wsgate/admin.sock`).
    pub fn describe(&self) -> String {
        match self {
            AdminListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("tcp ({e})"), |a| a.to_string()),
            AdminListener::Unix(_, file) => format!("unix:{}", file.0.display()),
        }
    }
}

/// A socket file this process created; removed when dropped.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only a socket is removed: never a file someone put there since.
        let is_socket = std::fs::symlink_metadata(&self.0).is_ok_and(|m| m.file_type().is_socket());
        if is_socket && let Err(e) = std::fs::remove_file(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "admin socket not removed");
        }
    }
}

/// Bind `bind` (must run inside a tokio runtime).
pub async fn bind(bind: &AdminBind) -> io::Result<AdminListener> {
    match bind {
        AdminBind::Tcp(addr) => TcpListener::bind(addr).await.map(AdminListener::Tcp),
        AdminBind::Unix(path) => bind_unix(path),
    }
}

fn bind_unix(path: &Path) -> io::Result<AdminListener> {
    clear_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|e| at(path, e))?;
    let file = SocketFile(path.to_owned());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| at(path, e))?;
    Ok(AdminListener::Unix(listener, file))
}

/// Remove a socket file nothing accepts on; refuse a live socket or anything else.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at(path, e)),
    };
    if !meta.file_type().is_socket() {
        let msg = "exists and is not a socket; not replaced";
        return Err(at(path, io::Error::new(io::ErrorKind::AlreadyExists, msg)));
    }
    // A connect to a Unix socket answers at once: accepted means another process serves it.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        let msg = "another process accepts on this socket";
        return Err(at(path, io::Error::new(io::ErrorKind::AddrInUse, msg)));
    }
    tracing::info!(path = %path.display(), "replacing a stale admin socket");
    std::fs::remove_file(path).map_err(|e| at(path, e))
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
