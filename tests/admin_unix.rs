//! The admin endpoint on a Unix socket (`admin: { bind: "unix:/PATH" }`): mode 0660, a stale
//! file from a previous process replaced, a live one or a non-socket refused, the file removed
//! when the gateway stops; `wsgate sessions --admin unix:/PATH` talks to it; and a reload that
//! changes `admin.bind` moves the endpoint (the old socket closed and removed).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hyper::Method;
use support::within;
use wsgate::admin::client::{self, AdminUrl};
use wsgate::admin::listen;
use wsgate::config::AdminBind;
use wsgate::{Gateway, Shutdown};

fn config(admin: &Path) -> String {
    config_with_route(admin, "/echo/")
}

fn config_with_route(admin: &Path, route: &str) -> String {
    format!(
        "listeners:\n  - name: public\n    bind: \"127.0.0.1:0\"\n    tls: {{ self_signed: [localhost] }}\n\
         routes:\n  - {{ path: {route}, pool: echo }}\n\
         pools:\n  echo:\n    backends: [ {{ url: \"ws://127.0.0.1:9\" }} ]\n\
         admin: {{ bind: \"unix:{}\" }}\n",
        admin.display()
    )
}

/// `GET path` over the admin socket at `socket`: status and body.
async fn get(socket: &Path, path: &str) -> Result<(u16, String), String> {
    let url = AdminUrl::parse(&format!("unix:{}", socket.display()))?;
    let reply = client::request(&url, Method::GET, path, None, None).await?;
    Ok((
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    ))
}

/// A gateway on `config_path`, its admin endpoint started, serving until the sender fires.
async fn start(config_path: &Path) -> (wsgate::Reloader, StopHandle) {
    let config = wsgate::config::load_file(config_path).expect("config");
    let gateway = Gateway::new(config).expect("gateway");
    within("admin start", gateway.start_admin())
        .await
        .expect("admin endpoint binds");
    let reloader = gateway.reloader();
    let listeners = gateway.bind().expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task =
        tokio::spawn(gateway.serve(
            listeners,
            async move { rx.await.unwrap_or(Shutdown::Immediate) },
        ));
    (reloader, StopHandle { tx, task })
}

struct StopHandle {
    tx: tokio::sync::oneshot::Sender<Shutdown>,
    task: tokio::task::JoinHandle<()>,
}

impl StopHandle {
    async fn stop(self) {
        let _ = self.tx.send(Shutdown::Immediate);
        within("gateway stop", self.task)
            .await
            .expect("serve ended");
    }
}

fn sock(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[tokio::test]
async fn a_unix_admin_socket_is_0660_replaces_a_stale_one_and_is_removed_on_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "admin.sock");
    // A previous process's socket: the file stays, nothing accepts on it.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());
    let config_path = dir.path().join("wsgate.yaml");
    std::fs::write(&config_path, config(&path)).expect("write config");

    let (_reloader, stop) = start(&config_path).await;
    let mode = std::fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, listen::SOCKET_MODE);
    let (status, body) = get(&path, "/metrics")
        .await
        .expect("scrape over the socket");
    assert_eq!(status, 200);
    assert!(body.contains("wsgate_build_info{"), "{body}");

    // A second wsgate on the same path is refused while this one accepts.
    let again = listen::bind(&AdminBind::Unix(path.clone())).await;
    let err = again.expect_err("a live socket is not taken over");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");

    // The CLI reaches it too.
    let url = format!("unix:{}", path.display());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(["sessions", "list", "--admin", &url])
            .env_remove("WSGATE_ADMIN_TOKEN")
            .output()
            .expect("run wsgate sessions")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ID "),
        "{out:?}"
    );

    stop.stop().await;
    assert!(!path.exists(), "the socket file is removed on exit");
}

#[tokio::test]
async fn a_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "admin.sock");
    std::fs::write(&path, "keep me").expect("write");
    let err = listen::bind(&AdminBind::Unix(path.clone()))
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me");
}

#[tokio::test]
async fn a_reload_moves_the_admin_endpoint_to_a_new_bind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (sock(&dir, "a.sock"), sock(&dir, "b.sock"));
    let config_path = dir.path().join("wsgate.yaml");
    std::fs::write(&config_path, config(&a)).expect("write config");
    let (reloader, stop) = start(&config_path).await;
    assert_eq!(get(&a, "/healthz").await.expect("a answers").0, 200);

    std::fs::write(&config_path, config_with_route(&b, "/chat/")).expect("rewrite config");
    within("reload", reloader.reload()).await.expect("reload");
    assert_eq!(get(&b, "/healthz").await.expect("b answers").0, 200);
    // The reloaded runtime's route has its series from the start too.
    let (_, metrics) = get(&b, "/metrics").await.expect("scrape b");
    let fresh = r#"wsgate_handshakes_total{route="*/chat/",outcome="no_route"} 0"#;
    assert!(metrics.lines().any(|l| l == fresh), "{metrics}");
    assert!(!a.exists(), "the old socket is closed and removed");
    assert!(get(&a, "/healthz").await.is_err());

    // A bind that cannot be taken keeps the endpoint where it is.
    let blocked = sock(&dir, "blocked.sock");
    std::fs::write(&blocked, "not a socket").expect("write");
    std::fs::write(&config_path, config(&blocked)).expect("rewrite config");
    within("reload", reloader.reload())
        .await
        .expect("reload applies the rest");
    assert_eq!(get(&b, "/healthz").await.expect("b still answers").0, 200);

    stop.stop().await;
    assert!(!b.exists());
}
