//! `h2hold hold` and `h2hold cert`: the client side. Over h2, `--conns` TLS connections (ALPN
//! `h2`) each carry `--streams` extended CONNECT streams (RFC 8441 §4, `:protocol websocket`);
//! over h1 (`--h1`), each of `--conns` connections (ALPN `http/1.1`) carries one WebSocket.
//! Every WebSocket echoes one message before the hold; none carries anything during it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper::ext::Protocol;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bound on every single network step (connect, handshake, answer, echo, close).
const STEP: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct HoldArgs {
    /// `wss://HOST:PORT/PATH`; HOST is sent as SNI and `:authority`/Host, PORT is dialled on
    /// 127.0.0.1.
    #[arg(long)]
    url: String,
    /// The CA to trust, DER (`h2hold cert` writes it).
    #[arg(long)]
    ca: PathBuf,
    /// TLS connections to open.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// WebSocket streams per h2 connection (at most the server's 100).
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// One WebSocket per HTTP/1.1 connection instead of h2 streams.
    #[arg(long)]
    h1: bool,
    /// Seconds to hold them idle once all are open.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Written with `OPENED FAILED` once all are open and checked.
    #[arg(long)]
    ready: Option<PathBuf>,
    /// Sessions being opened at once (h1: connections, h2: streams, across connections), so
    /// that both protocols meet the server with the same number of handshakes in flight.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
}

/// A throwaway CA and a `localhost`/`127.0.0.1` leaf signed by it.
pub fn write_cert(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    std::fs::create_dir_all(dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
        .signed_by(&key, &issuer)?;
    std::fs::write(dir.join("ca.der"), issuer.der())?;
    std::fs::write(dir.join("cert.pem"), leaf.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    Ok(())
}

struct Target {
    addr: SocketAddr,
    host: String,
    authority: String,
    path: String,
    tls: TlsConnector,
}

pub fn hold(args: HoldArgs) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(run(args))
        .map_err(|e| e.to_string().into())
}

async fn run(args: HoldArgs) -> Result<(), Error> {
    let target = Arc::new(target(&args)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let dropped = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..args.conns {
        let (target, permits, ready_tx) = (target.clone(), permits.clone(), ready_tx.clone());
        let (stop, dropped) = (stop_rx.clone(), dropped.clone());
        let (h1, streams) = (args.h1, args.streams);
        set.spawn(async move {
            let opened = if h1 {
                open_h1(&target, &permits).await.map(|ws| (None, vec![ws]))
            } else {
                open_h2(&target, streams, &permits)
                    .await
                    .map(|(c, all)| (Some(c), all))
            };
            let (conn, mut all) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(all.len()));
            drop(ready_tx);
            hold_idle(&mut all, stop, &dropped).await;
            for ws in &mut all {
                let _ = timeout(STEP, ws.close(None)).await;
            }
            drop(conn);
        });
    }
    drop(ready_tx);
    let (mut opened, mut errors) = (0usize, Vec::new());
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(n) => opened += n,
            Err(e) => errors.push(e),
        }
    }
    let wanted = if args.h1 {
        args.conns
    } else {
        args.conns * args.streams
    };
    let failed = wanted - opened;
    let open_s = started.elapsed().as_secs_f64();
    println!("READY opened={opened} failed={failed} open_s={open_s:.3}");
    if let Some(path) = &args.ready {
        std::fs::write(path, format!("{opened} {failed}\n"))?;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    let dropped_during_hold = dropped.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    while set.join_next().await.is_some() {}
    let line = serde_json::json!({
        "mode": if args.h1 { "h1" } else { "h2" },
        "conns": args.conns,
        "streams_per_conn": if args.h1 { 1 } else { args.streams },
        "opened": opened,
        "failed": failed,
        "first_error": errors.first(),
        "open_s": open_s,
        "held_s": args.secs,
        "dropped_during_hold": dropped_during_hold,
    });
    println!("{line}");
    Ok(())
}

fn target(args: &HoldArgs) -> Result<Target, Error> {
    let rest = args
        .url
        .strip_prefix("wss://")
        .ok_or("the URL must be wss://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').ok_or("the URL needs a port")?;
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(std::fs::read(&args.ca)?))?;
    // Name the provider: more than one may be compiled in through dev-dependencies.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![if args.h1 { &b"http/1.1"[..] } else { b"h2" }.to_vec()];
    Ok(Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port.parse()?)),
        host: host.to_owned(),
        authority: authority.to_owned(),
        path: if path.is_empty() { "/" } else { path }.to_owned(),
        tls: TlsConnector::from(Arc::new(config)),
    })
}

async fn tls(t: &Target) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let tcp = timeout(STEP, TcpStream::connect(t.addr)).await??;
    let name = ServerName::try_from(t.host.clone())?;
    Ok(timeout(STEP, t.tls.connect(name, tcp)).await??)
}

type BoxedIo = Box<dyn Io>;
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Ws = WebSocketStream<BoxedIo>;

/// One WebSocket on its own HTTP/1.1 connection.
async fn open_h1(t: &Target, permits: &Semaphore) -> Result<Ws, Error> {
    let _permit = permits.acquire().await?;
    let io: BoxedIo = Box::new(tls(t).await?);
    let url = format!("wss://{}{}", t.authority, t.path);
    let handshake = tokio_tungstenite::client_async(url, io);
    let (mut ws, _) = timeout(STEP, handshake).await??;
    echo(&mut ws).await?;
    Ok(ws)
}

/// `streams` WebSockets on one h2 connection; the connection's task is returned to be held.
async fn open_h2(
    t: &Target,
    streams: usize,
    permits: &Semaphore,
) -> Result<(tokio::task::JoinHandle<()>, Vec<Ws>), Error> {
    let io = TokioIo::new(tls(t).await?);
    let (send, conn) = timeout(
        STEP,
        hyper::client::conn::http2::handshake(TokioExecutor::new(), io),
    )
    .await??;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let opening = (0..streams).map(|_| async {
        let _permit = permits.acquire().await?;
        open_stream(t, send.clone()).await
    });
    let all = futures_util::future::try_join_all(opening).await?;
    Ok((conn, all))
}

async fn open_stream(t: &Target, mut send: SendRequest<Empty<Bytes>>) -> Result<Ws, Error> {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://{}{}", t.authority, t.path))
        .header("sec-websocket-version", "13")
        .body(Empty::new())?;
    req.extensions_mut()
        .insert(Protocol::from_static("websocket"));
    let answer = timeout(STEP, send.send_request(req)).await??;
    if answer.status() != 200 {
        return Err(format!("extended CONNECT answered {}", answer.status()).into());
    }
    let upgraded = timeout(STEP, hyper::upgrade::on(answer)).await??;
    let io: BoxedIo = Box::new(TokioIo::new(upgraded));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    echo(&mut ws).await?;
    Ok(ws)
}

/// One text message, echoed back unchanged.
async fn echo(ws: &mut Ws) -> Result<(), Error> {
    let text = "h2hold: are you there?";
    timeout(STEP, ws.send(Message::text(text))).await??;
    match timeout(STEP, ws.next()).await? {
        Some(Ok(Message::Text(t))) if t.as_str() == text => Ok(()),
        other => Err(format!("expected the echo, got {other:?}").into()),
    }
}

/// Wait for the stop signal, counting WebSockets the proxy ends meanwhile.
async fn hold_idle(all: &mut [Ws], mut stop: watch::Receiver<bool>, dropped: &AtomicU64) {
    let watch_all = futures_util::future::join_all(all.iter_mut().map(|ws| async move {
        while let Some(Ok(Message::Ping(_) | Message::Pong(_))) = ws.next().await {}
        dropped.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<()>().await;
    }));
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        _ = watch_all => {}
    }
}
