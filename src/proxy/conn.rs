//! One client connection, start to finish: the whole data path in order, in one place.
//!
//! `handle` runs PROXY in and TLS; by ALPN the connection goes to hyper's HTTP/2 server
//! ([`h2::serve`], RFC 8441 streams) or its HTTP/1.1 server ([`h1::serve`]). Both run the same
//! stages per request ([`pass::pass`]: route → validate → admit → upstream → verify) and answer
//! with the same [`respond`](super::respond) builders; a verified upgrade becomes a tunnel task
//! of its own, so nothing of the HTTP exchange stays while the tunnel lives.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admit::limits::Permit;
use crate::proxy::{client_addr, h1, h2, proxy_protocol, tls};
use crate::runtime::client_auth::ClientCert;
use crate::runtime::{ListenerRuntime, Runtime};
use crate::stats::Stats;

/// What one connection needs from the gateway.
pub struct ConnCtx {
    /// The snapshot taken when the connection arrived.
    pub runtime: Arc<Runtime>,
    pub listener: Arc<ListenerRuntime>,
    pub stats: Arc<Stats>,
    pub tracker: TaskTracker,
    pub close: CancellationToken,
    /// Cancelled when the gateway stops accepting (a drain).
    pub draining: CancellationToken,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The address the client connected to (our side of the accepted socket).
    pub local: SocketAddr,
    /// The global connection permit taken at accept: moved into the h1 tunnel, or held by the
    /// h2 connection task (never by an h2 stream's tunnel).
    pub permit: Option<Permit>,
    /// What the client's verified certificate names (listeners with `client_auth`), set once
    /// the TLS handshake is done; every request and stream of the connection carries it.
    pub client_cert: Option<ClientCert>,
}

/// Serve one accepted TCP connection.
pub async fn handle(mut tcp: TcpStream, mut ctx: ConnCtx) {
    let guard = ctx.stats.metrics.connection_opened();
    // 0. PROXY protocol, believed only from trusted peers; anyone else is dropped.
    if ctx.listener.proxy_protocol {
        if !client_addr::is_trusted(ctx.peer.ip(), &ctx.runtime.trusted_proxies) {
            ctx.stats.metrics.refused_at_accept("proxy_untrusted");
            tracing::info!(peer = %ctx.peer, "PROXY header from an untrusted peer; dropped");
            return;
        }
        match proxy_protocol::read_header(&mut tcp, ctx.runtime.limits.tls_handshake_timeout).await
        {
            Ok(header) => {
                if let Some(source) = header.source {
                    ctx.peer = source;
                }
            }
            Err(e) => {
                ctx.stats.metrics.refused_at_accept("proxy_header");
                tracing::info!(peer = %ctx.peer, error = ?e, "bad PROXY header; dropped");
                return;
            }
        }
    }
    let Some(config) = ctx.listener.tls.clone() else {
        // Plain listeners speak HTTP/1.1 only (no h2c).
        return h1::serve(tcp, None, ctx, guard).await;
    };
    // 1. TLS: versions, no renegotiation, SNI picks the certificate, a client certificate
    // verified when the listener asks for one (runtime::tls); a refused one fails the handshake.
    match tls::accept(config, tcp, ctx.runtime.limits.tls_handshake_timeout).await {
        Ok((stream, sni)) => {
            let alpn = stream.connection().alpn_protocol();
            // RFC 8737 §3: a TLS-ALPN-01 validation ends after the handshake; nothing is served.
            if alpn == Some(crate::acme::ACME_TLS_ALPN) {
                tracing::debug!(peer = %ctx.peer, ?sni, "acme-tls/1 validation handshake");
                return;
            }
            ctx.client_cert = tls::client_cert(&stream);
            // ALPN chose h2 (offered only with `http2: true`): RFC 8441 streams.
            if alpn == Some(b"h2") {
                return h2::serve(stream, sni, ctx, guard).await;
            }
            h1::serve(stream, sni, ctx, guard).await;
        }
        Err(failure) => {
            let reason = failure.reason();
            ctx.stats.metrics.tls_failure(reason);
            // A refused client certificate is a refusal an operator looks for; scanners and
            // clients that give up are noise.
            if reason == "client_certificate" {
                tracing::info!(peer = %ctx.peer, reason, ?failure, "client certificate refused");
            } else {
                tracing::debug!(peer = %ctx.peer, ?failure, "TLS handshake failed");
            }
        }
    }
}
