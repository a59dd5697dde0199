//! Reload on file change: a config rewritten by rename reloads, a broken one is refused while the
//! running config stays, a Kubernetes-style `..data` symlink swap reloads, and a file first named
//! by a reloaded config (in a directory not watched before) is watched from then on.
//!
//! Nothing sleeps: each step waits (bounded) on the generation or on the watcher's reload counts.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use support::eventually;
use wsgate::config::files::watched_files;
use wsgate::lifecycle::watch::{self, WatchHandle};
use wsgate::{Gateway, Reloader, Shutdown};

/// A plain listener, `routes` to one pool; `ca`: make the pool `wss://` verified by this file.
fn config(port: u16, backend: SocketAddr, routes: &[&str], ca: Option<&str>) -> String {
    let mut y =
        format!("listeners:\n  - {{ name: public, bind: \"127.0.0.1:{port}\" }}\nroutes:\n");
    for r in routes {
        y.push_str(&format!("  - {{ path: {r}, pool: app }}\n"));
    }
    let (scheme, tls) = match ca {
        Some(ca) => (
            "wss",
            format!("    tls: {{ ca: {ca}, server_name: backend.test }}\n"),
        ),
        None => ("ws", String::new()),
    };
    y.push_str(&format!(
        "pools:\n  app:\n    backends: [ {{ url: \"{scheme}://{backend}\" }} ]\n{tls}"
    ));
    y
}

/// Replace `path` the way editors and config managers do: write a temporary file, rename it over.
fn write_atomic(path: &Path, text: &str) {
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename over");
}

/// A PEM certificate (a CA bundle for `tls.ca`); each call makes a different one.
fn cert_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["backend.test".to_string()])
        .expect("self-signed certificate")
        .cert
        .pem()
}

/// A gateway serving the config at `path`, watched.
struct Running {
    reloader: Reloader,
    watch: WatchHandle,
    port: u16,
    stop: oneshot::Sender<Shutdown>,
    server: JoinHandle<()>,
}

impl Running {
    /// Load `path` (its first listener binds port 0), serve it, and watch the files it names.
    async fn start(path: &Path) -> Running {
        let config = wsgate::config::load_file(path).expect("config");
        let files = watched_files(&config);
        assert_eq!(files.first().map(PathBuf::as_path), Some(path));
        let gateway = Gateway::new(config).expect("gateway");
        let reloader = gateway.reloader();
        let listeners = gateway.bind().expect("bind");
        let port = listeners[0].local_addr().expect("addr").port();
        let (stop, stop_rx) = oneshot::channel();
        let server = tokio::spawn(gateway.serve(listeners, async move {
            stop_rx.await.unwrap_or(Shutdown::Immediate)
        }));
        let watch = watch::spawn(reloader.clone(), files).expect("watch");
        Running {
            reloader,
            watch,
            port,
            stop,
            server,
        }
    }

    /// Wait until a reload after generation `before` is in use; returns the new generation.
    async fn reloaded_after(&self, before: u64) -> u64 {
        eventually("a reload after the change", || {
            self.reloader.generation() > before
        })
        .await;
        self.reloader.generation()
    }

    /// Wait until the watcher finished `n` reloads (its watches are refreshed by then).
    async fn reloads_finished(&self, n: u64) {
        eventually("the watcher's reload to finish", || {
            self.watch.reloads() >= n
        })
        .await;
    }

    async fn stop(self) {
        drop(self.watch);
        let _ = self.stop.send(Shutdown::Immediate);
        support::within("server stops", self.server)
            .await
            .expect("join");
    }
}

/// A backend address; no test here connects to it (health checks are off).
async fn backend() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_config_reloads_and_a_broken_one_is_refused() {
    let backend = backend().await;
    let backend = backend.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wsgate.yaml");
    std::fs::write(&path, config(0, backend, &["/one"], None)).expect("write");
    let gw = Running::start(&path).await;
    let start = gw.reloader.generation();

    // (1) A route added by rename: reloaded without a signal.
    write_atomic(&path, &config(gw.port, backend, &["/one", "/two"], None));
    let second = gw.reloaded_after(start).await;
    gw.reloads_finished(1).await;
    assert_eq!(gw.watch.failed_reloads(), 0);

    // (2) A broken file: the reload is attempted, refused, and the running config stays.
    let failed = gw.watch.failed_reloads();
    write_atomic(&path, "listeners:\n  - name: public\n    bindd: oops\n");
    eventually("the broken file to be refused", || {
        gw.watch.failed_reloads() > failed
    })
    .await;
    assert_eq!(gw.reloader.generation(), second, "a refused reload swapped");

    // (3) Fixed: reloaded again.
    write_atomic(&path, &config(gw.port, backend, &["/one", "/three"], None));
    gw.reloaded_after(second).await;
    gw.stop().await;
}

/// Kubernetes mounts `wsgate.yaml -> ..data/wsgate.yaml`, `..data -> ..v1`, and updates by
/// pointing a new `..data` symlink at a new directory and renaming it over the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_symlink_swap_reloads() {
    let backend = backend().await;
    let backend = backend.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir(root.join("..v1")).expect("mkdir");
    std::fs::write(
        root.join("..v1/wsgate.yaml"),
        config(0, backend, &["/one"], None),
    )
    .expect("write");
    std::os::unix::fs::symlink("..v1", root.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/wsgate.yaml", root.join("wsgate.yaml")).expect("link");
    let path = root.join("wsgate.yaml");
    let gw = Running::start(&path).await;
    let start = gw.reloader.generation();

    std::fs::create_dir(root.join("..v2")).expect("mkdir");
    std::fs::write(
        root.join("..v2/wsgate.yaml"),
        config(gw.port, backend, &["/one", "/two"], None),
    )
    .expect("write");
    std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).expect("link");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    std::fs::remove_dir_all(root.join("..v1")).expect("remove old");

    gw.reloaded_after(start).await;
    gw.stop().await;
}

/// A CA file in a directory the first config did not name: after the reload that names it, a
/// change to it reloads too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_named_by_a_reload_is_watched_from_then_on() {
    let backend = backend().await;
    let backend = backend.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wsgate.yaml");
    let ca = dir.path().join("certs").join("ca.pem");
    std::fs::create_dir(dir.path().join("certs")).expect("mkdir");
    std::fs::write(&ca, cert_pem()).expect("write");
    std::fs::write(&path, config(0, backend, &["/"], None)).expect("write");
    let gw = Running::start(&path).await;
    let start = gw.reloader.generation();

    write_atomic(
        &path,
        &config(gw.port, backend, &["/"], Some("certs/ca.pem")),
    );
    let named = gw.reloaded_after(start).await;
    gw.reloads_finished(1).await;

    write_atomic(&ca, &cert_pem());
    gw.reloaded_after(named).await;
    assert_eq!(gw.watch.failed_reloads(), 0);
    gw.stop().await;
}

/// `certs -> certs.v1` swapped to `certs.v2` (renaming a new link over it): the swap reloads, and
/// the directory is watched where it points now, so a later change inside `certs.v2` reloads too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_directory_symlink_is_followed() {
    let backend = backend().await;
    let backend = backend.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for v in ["certs.v1", "certs.v2"] {
        std::fs::create_dir(root.join(v)).expect("mkdir");
        std::fs::write(root.join(v).join("ca.pem"), cert_pem()).expect("write");
    }
    std::os::unix::fs::symlink("certs.v1", root.join("certs")).expect("link");
    let path = root.join("wsgate.yaml");
    let ca = Some("certs/ca.pem");
    std::fs::write(&path, config(0, backend, &["/"], ca)).expect("write");
    let gw = Running::start(&path).await;
    std::fs::write(&path, config(gw.port, backend, &["/"], ca)).expect("write");
    // That plain write reloads too; wait for it so the swap below is a change of its own.
    let start = gw.reloaded_after(gw.reloader.generation()).await;
    gw.reloads_finished(1).await;

    std::os::unix::fs::symlink("certs.v2", root.join("certs.tmp")).expect("link");
    std::fs::rename(root.join("certs.tmp"), root.join("certs")).expect("swap");
    let swapped = gw.reloaded_after(start).await;
    gw.reloads_finished(2).await;

    write_atomic(&root.join("certs/ca.pem"), &cert_pem());
    gw.reloaded_after(swapped).await;
    assert_eq!(gw.watch.failed_reloads(), 0);
    gw.stop().await;
}
