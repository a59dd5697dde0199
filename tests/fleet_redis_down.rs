//! A fleet whose Redis fails (issue #11): with `on_error: allow` a handshake is admitted within
//! `cluster.timeout` + 1 s whether Redis is gone (stopped) or hung (SIGSTOP), and local limits
//! still apply; with `on_error: deny` it is refused 503 `fleet_unavailable`. After Redis comes
//! back empty, the instances re-register their live sessions (one heartbeat, 2 s) and the
//! subject cap holds again. A reload that names another Redis moves the fleet state there.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::admit::close_ws;
use support::fleet::{
    CHAT, Fleet, REDIS_TIMEOUT, admitted, admitted_within, cluster_block, per_subject, refused,
    refused_within,
};
use support::redis::RedisServer;
use support::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use wsgate::{Gateway, Reloader, Shutdown};

/// How long a handshake may take while Redis fails: one Redis call's timeout plus 1 s.
fn failing_redis_bound() -> Duration {
    REDIS_TIMEOUT + Duration::from_secs(1)
}

/// Re-registration takes one heartbeat (2 s); a restarted Redis is polled this long.
const BACK_WITHIN: Duration = Duration::from_secs(5);

/// A `/chat` handshake for `token` on `proxy`, admitted within [`failing_redis_bound`].
async fn admitted_quickly(proxy: &TestProxy, token: &str, what: &str) -> Ws {
    let began = Instant::now();
    let ws = admitted(proxy, token, what).await;
    let took = began.elapsed();
    assert!(took < failing_redis_bound(), "{what}: took {took:?}");
    ws
}

#[tokio::test]
async fn allow_admits_within_the_timeout_while_redis_is_hung_or_down() {
    let mut fleet = Fleet::start("allow").await.on_error("allow");
    let gw = fleet.chats(2, &per_subject(2, "refuse")).await;
    let alice = fleet.token("alice");
    let _a1 = admitted(&gw[0], &alice, "alice 1 on gw-1").await;
    let _a2 = admitted(&gw[0], &alice, "alice 2 on gw-1").await;
    let full = "subject_sessions_full";
    refused(&gw[1], CHAT, Some(&alice), 429, full).await;

    fleet.redis.freeze();
    let _bob = admitted_quickly(&gw[1], &fleet.token("bob"), "bob, Redis hung").await;
    fleet.redis.thaw();

    fleet.redis.stop().await;
    // The fleet would refuse alice a third session; without Redis, allow admits it...
    let third = admitted_quickly(&gw[1], &alice, "alice 3 on gw-2, Redis down").await;
    close_ws(third).await;
    // ...but the local check still runs: gw-1 holds two of hers itself.
    refused(&gw[0], CHAT, Some(&alice), 429, full).await;

    fleet.redis.restart().await;
    let what = "alice 3 on gw-2 once her sessions are re-registered";
    let refusal = refused_within(gw[1].addr(), &alice, 429, BACK_WITHIN, what).await;
    assert!(refusal.retry_after.is_some(), "{refusal:?}");
}

#[tokio::test]
async fn deny_refuses_503_while_redis_is_hung_or_down_and_recovers_after_a_restart() {
    let mut fleet = Fleet::start("deny").await.on_error("deny");
    let gw = fleet.chats(2, &per_subject(2, "refuse")).await;
    let alice = fleet.token("alice");
    let carol = fleet.token("carol");
    let _a1 = admitted(&gw[0], &alice, "alice 1 on gw-1").await;
    let _a2 = admitted(&gw[0], &alice, "alice 2 on gw-1").await;
    let _bob = admitted(&gw[1], &fleet.token("bob"), "bob on gw-2, Redis up").await;

    let unavailable = "fleet_unavailable";
    fleet.redis.freeze();
    let began = Instant::now();
    refused(&gw[1], CHAT, Some(&carol), 503, unavailable).await;
    assert!(
        began.elapsed() < failing_redis_bound(),
        "hung: {:?}",
        began.elapsed()
    );
    fleet.redis.thaw();

    fleet.redis.stop().await;
    let began = Instant::now();
    refused(&gw[1], CHAT, Some(&carol), 503, unavailable).await;
    assert!(
        began.elapsed() < failing_redis_bound(),
        "down: {:?}",
        began.elapsed()
    );

    fleet.redis.restart().await;
    let what = "carol once Redis is back";
    let _carol = admitted_within(gw[1].addr(), &carol, BACK_WITHIN, what).await;
    let what = "alice 3 on gw-2 once her sessions are re-registered";
    refused_within(gw[1].addr(), &alice, 429, BACK_WITHIN, what).await;
    // And it stays refused, counted under its label.
    refused(&gw[1], CHAT, Some(&alice), 429, "subject_sessions_full").await;
}

/// An in-process wsgate on a config file it can be told to reload (as `tests/reload.rs` does).
struct FileInstance {
    addr: SocketAddr,
    reloader: Reloader,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<Shutdown>>,
    _task: JoinHandle<()>,
}

impl FileInstance {
    /// Serve `/chat` with a fleet `per_subject` cap, `on_error: deny`, using Redis at `redis`.
    async fn start(fleet: &Fleet, redis: &str) -> FileInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key_file, pem) = fleet.key.pem_file();
        std::fs::write(dir.path().join(key_file), pem).expect("write key");
        // Port 0 for the first bind; a reload keeps the listener, so later files name its port.
        write_config(dir.path(), fleet, redis, 0);
        let config = wsgate::config::load_file(&dir.path().join("wsgate.yaml"))
            .unwrap_or_else(|e| panic!("test config rejected:\n{e}"));
        let gateway = Gateway::new(config).unwrap_or_else(|e| panic!("gateway: {e}"));
        let reloader = gateway.reloader();
        let listeners = gateway.bind().expect("bind 127.0.0.1:0");
        let addr = listeners[0].local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel();
        let stop = async move { rx.await.unwrap_or(Shutdown::Immediate) };
        let task = tokio::spawn(gateway.serve(listeners, stop));
        FileInstance {
            addr,
            reloader,
            dir,
            stop: Some(tx),
            _task: task,
        }
    }

    /// Rewrite the config to use Redis at `redis` and reload it.
    async fn switch_to(&self, fleet: &Fleet, redis: &str) {
        write_config(self.dir.path(), fleet, redis, self.addr.port());
        within("reload", self.reloader.reload())
            .await
            .unwrap_or_else(|e| panic!("reload refused:\n{e}"));
    }
}

impl Drop for FileInstance {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(Shutdown::Immediate);
        }
    }
}

fn write_config(dir: &std::path::Path, fleet: &Fleet, redis: &str, port: u16) {
    let yaml = format!(
        "{}\nlisteners:\n  - name: public\n    bind: \"127.0.0.1:{port}\"\n\
         routes:\n  - {{ path: {CHAT}, pool: echo, {} }}\n\
         pools:\n  echo: {{ backends: [ {{ url: \"ws://{}\" }} ] }}\n",
        cluster_block(redis, &fleet.prefix, "gw-file", "deny"),
        fleet.chat_policy(&per_subject(2, "refuse")),
        fleet.backend.addr()
    );
    std::fs::write(dir.join("wsgate.yaml"), yaml).expect("write config");
}

/// Poll until `redis` holds a key starting with `prefix` (the instance wrote fleet state there).
async fn keys_appear(redis: &RedisServer, prefix: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let keys = redis.keys(&format!("{prefix}*")).await;
        if !keys.is_empty() {
            return keys;
        }
        assert!(Instant::now() < deadline, "{what}: no {prefix}* keys");
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reload_moves_the_fleet_state_to_another_redis() {
    let mut fleet = Fleet::start("reload").await;
    let r2 = RedisServer::start().await;
    let prefix = fleet.prefix.clone();
    let instance = FileInstance::start(&fleet, &fleet.redis.url()).await;
    let alice = fleet.token("alice");
    let limit = Duration::from_secs(5);
    let first = admitted_within(instance.addr, &alice, limit, "alice via R1").await;
    keys_appear(&fleet.redis, &prefix, "R1 before the reload").await;
    assert!(r2.keys("*").await.is_empty(), "R2 used before the reload");
    close_ws(first).await;

    instance.switch_to(&fleet, &r2.url()).await;
    // R1 no longer matters: with on_error deny, asking it would refuse 503.
    fleet.redis.stop().await;
    let _second = admitted_within(instance.addr, &alice, limit, "alice via R2").await;
    let keys = keys_appear(&r2, &prefix, "R2 after the reload").await;
    assert!(keys.iter().all(|k| k.starts_with(&prefix)), "{keys:?}");
}
