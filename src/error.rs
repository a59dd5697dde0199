//! Every way wsgate refuses a connection, and the one table mapping each to an HTTP answer.
//!
//! Client faults are 4xx, backend faults 502/504. Each refusal carries a short, bounded reason
//! label used in logs and counters. Writing the answer lives in `proxy::respond`.

use std::fmt;

/// Why a connection did not become a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    // ---- request head (proxy::head) ----
    /// Nothing or not the whole head within `request_header_timeout`.
    HeadTimeout,
    /// Head larger than `max_request_header_bytes`.
    HeadTooLarge,
    /// More header fields than `max_request_headers`.
    TooManyHeaders,
    /// Syntax the parser refuses: bad request line, whitespace before colon, bare CR, NUL, obs-fold,
    /// invalid field name.
    MalformedHead,
    /// Content-Length together with Transfer-Encoding, or a duplicate/invalid Content-Length.
    AmbiguousFraming,
    /// A Transfer-Encoding this proxy does not accept.
    BadTransferEncoding,
    /// Request target not in origin form, or a path that cannot be normalised.
    BadTarget,
    // ---- host and route ----
    /// `Host` missing, repeated or invalid.
    BadHost,
    /// SNI present and `Host` names another server.
    MisdirectedRequest,
    /// No route for host + path.
    NoRoute,
    // ---- RFC 6455 §4.2.1 ----
    /// No `Upgrade: websocket` on a WebSocket route.
    NotWebSocket,
    /// Method other than GET.
    MethodNotAllowed,
    /// HTTP/1.0.
    HttpVersion,
    /// An h2 request other than GET or CONNECT (RFC 8441 §4: WebSockets use CONNECT).
    NotConnect,
    /// An h2 CONNECT without `:protocol` (RFC 8441 §4): a plain tunnel, not a WebSocket.
    NoConnectProtocol,
    /// `Connection` does not list `upgrade`.
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Key` missing, repeated or not base64 of 16 bytes.
    BadKey,
    /// `Sec-WebSocket-Version` missing, repeated or not 13.
    WsVersion,
    /// A body on the upgrade request.
    BodyOnUpgrade,
    // ---- proxied plain requests (upstream::plain) ----
    /// A request body over `max_request_body_bytes`.
    RequestBodyTooLarge,
    /// The request body did not arrive within `http_request_timeout`.
    RequestBodyTimeout,
    /// The client's request body ended early or broke its framing.
    RequestBodyIncomplete,
    // ---- admission (admit) ----
    /// `Origin` required by the route's policy but absent.
    OriginMissing,
    /// `Origin` not in the route's allowlist.
    OriginNotAllowed,
    /// More than one `Origin` field.
    DuplicateOrigin,
    /// No token where the route looks for one.
    TokenMissing,
    /// Token present but not valid (signature, expiry, issuer, audience, algorithm, key).
    TokenInvalid,
    /// Two tokens (a source present twice).
    DuplicateToken,
    /// Valid token whose claims do not meet `require`.
    ClaimsInsufficient,
    /// The auth service answered 401 or 403 (that status is relayed).
    AuthDenied(u16),
    /// The auth service failed, timed out or answered something else.
    AuthUnavailable,
    /// The client address exceeded its handshake rate.
    RateLimited,
    /// The route exceeded its handshake rate.
    RouteRateLimited,
    /// The client address holds its maximum of open tunnels.
    IpConnectionsFull,
    /// The route holds its maximum of open tunnels.
    RouteFull,
    /// The token's subject holds `per_subject.max_sessions` on the route (`on_exceed: refuse`).
    SubjectSessionsFull,
    /// A fleet-wide check could not ask Redis and `cluster.on_error` is `deny`.
    FleetUnavailable,
    // ---- backend ----
    /// Connecting to the backend failed (refused, unreachable, resolution failed).
    BackendUnavailable,
    /// Connecting to the backend took longer than `backend_connect_timeout`.
    BackendConnectTimeout,
    /// The backend's answer head did not arrive within `backend_handshake_timeout`.
    BackendTimeout,
    /// The backend closed or reset before a whole answer head.
    BackendClosed,
    /// The backend's answer is not parseable HTTP, or is too large.
    BackendMalformed,
    /// The backend answered 101 but broke an RFC 6455 §4.1 rule.
    BackendBadUpgrade,
}

impl Refusal {
    /// Every refusal once (`AuthDenied` with 401: its reason label is the same whatever the
    /// status), so counters can start at zero for every reason. The table test checks the list
    /// against `reason()`.
    pub const ALL: &[Refusal] = &[
        Refusal::HeadTimeout,
        Refusal::HeadTooLarge,
        Refusal::TooManyHeaders,
        Refusal::MalformedHead,
        Refusal::AmbiguousFraming,
        Refusal::BadTransferEncoding,
        Refusal::BadTarget,
        Refusal::BadHost,
        Refusal::MisdirectedRequest,
        Refusal::NoRoute,
        Refusal::NotWebSocket,
        Refusal::MethodNotAllowed,
        Refusal::HttpVersion,
        Refusal::NotConnect,
        Refusal::NoConnectProtocol,
        Refusal::ConnectionNotUpgrade,
        Refusal::BadKey,
        Refusal::WsVersion,
        Refusal::BodyOnUpgrade,
        Refusal::RequestBodyTooLarge,
        Refusal::RequestBodyTimeout,
        Refusal::RequestBodyIncomplete,
        Refusal::OriginMissing,
        Refusal::OriginNotAllowed,
        Refusal::DuplicateOrigin,
        Refusal::TokenMissing,
        Refusal::TokenInvalid,
        Refusal::DuplicateToken,
        Refusal::ClaimsInsufficient,
        Refusal::AuthDenied(401),
        Refusal::AuthUnavailable,
        Refusal::RateLimited,
        Refusal::RouteRateLimited,
        Refusal::IpConnectionsFull,
        Refusal::RouteFull,
        Refusal::SubjectSessionsFull,
        Refusal::FleetUnavailable,
        Refusal::BackendUnavailable,
        Refusal::BackendConnectTimeout,
        Refusal::BackendTimeout,
        Refusal::BackendClosed,
        Refusal::BackendMalformed,
        Refusal::BackendBadUpgrade,
    ];

    /// The HTTP status sent to the client.
    pub fn status(self) -> u16 {
        use Refusal::*;
        match self {
            HeadTimeout => 408,
            HeadTooLarge | TooManyHeaders => 431,
            MalformedHead | AmbiguousFraming | BadTransferEncoding | BadTarget | BadHost => 400,
            MisdirectedRequest => 421,
            NoRoute => 404,
            NotWebSocket | WsVersion => 426,
            MethodNotAllowed | NotConnect => 405,
            NoConnectProtocol => 400,
            HttpVersion | ConnectionNotUpgrade | BadKey | BodyOnUpgrade => 400,
            RequestBodyTooLarge => 413,
            RequestBodyTimeout => 408,
            RequestBodyIncomplete => 400,
            OriginMissing | OriginNotAllowed | ClaimsInsufficient => 403,
            DuplicateOrigin | DuplicateToken => 400,
            TokenMissing | TokenInvalid => 401,
            AuthDenied(status) => status,
            AuthUnavailable | RouteFull | FleetUnavailable => 503,
            RateLimited | RouteRateLimited | IpConnectionsFull | SubjectSessionsFull => 429,
            BackendUnavailable | BackendClosed | BackendMalformed | BackendBadUpgrade => 502,
            BackendConnectTimeout | BackendTimeout => 504,
        }
    }

    /// Bounded label for logs and counters.
    pub fn reason(self) -> &'static str {
        use Refusal::*;
        match self {
            HeadTimeout => "head_timeout",
            HeadTooLarge => "head_too_large",
            TooManyHeaders => "too_many_headers",
            MalformedHead => "malformed_head",
            AmbiguousFraming => "ambiguous_framing",
            BadTransferEncoding => "bad_transfer_encoding",
            BadTarget => "bad_target",
            BadHost => "bad_host",
            MisdirectedRequest => "misdirected_request",
            NoRoute => "no_route",
            NotWebSocket => "not_websocket",
            MethodNotAllowed => "method_not_allowed",
            HttpVersion => "http_version",
            NotConnect => "not_connect",
            NoConnectProtocol => "no_connect_protocol",
            ConnectionNotUpgrade => "connection_not_upgrade",
            BadKey => "bad_key",
            WsVersion => "ws_version",
            BodyOnUpgrade => "body_on_upgrade",
            RequestBodyTooLarge => "request_body_too_large",
            RequestBodyTimeout => "request_body_timeout",
            RequestBodyIncomplete => "request_body_incomplete",
            OriginMissing => "origin_missing",
            OriginNotAllowed => "origin_not_allowed",
            DuplicateOrigin => "duplicate_origin",
            TokenMissing => "token_missing",
            TokenInvalid => "token_invalid",
            DuplicateToken => "duplicate_token",
            ClaimsInsufficient => "claims_insufficient",
            AuthDenied(_) => "auth_denied",
            AuthUnavailable => "auth_unavailable",
            RateLimited => "rate_limited",
            RouteRateLimited => "route_rate_limited",
            IpConnectionsFull => "ip_connections_full",
            RouteFull => "route_full",
            SubjectSessionsFull => "subject_sessions_full",
            FleetUnavailable => "fleet_unavailable",
            BackendUnavailable => "backend_unavailable",
            BackendConnectTimeout => "backend_connect_timeout",
            BackendTimeout => "backend_timeout",
            BackendClosed => "backend_closed",
            BackendMalformed => "backend_malformed",
            BackendBadUpgrade => "backend_bad_upgrade",
        }
    }

    /// Extra header lines the answer must carry (RFC 6455 §4.2.2, RFC 9110 §15.5.6).
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Refusal::NotWebSocket => &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
            Refusal::WsVersion => &[("Sec-WebSocket-Version", "13")],
            Refusal::MethodNotAllowed => &[("Allow", "GET")],
            Refusal::NotConnect => &[("Allow", "CONNECT")],
            // RFC 6750 §3: no error code when no token was sent.
            Refusal::TokenMissing | Refusal::AuthDenied(401) => {
                &[("WWW-Authenticate", "Bearer realm=\"wsgate\"")]
            }
            Refusal::TokenInvalid => &[(
                "WWW-Authenticate",
                "Bearer realm=\"wsgate\", error=\"invalid_token\"",
            )],
            Refusal::DuplicateToken => &[(
                "WWW-Authenticate",
                "Bearer realm=\"wsgate\", error=\"invalid_request\"",
            )],
            Refusal::ClaimsInsufficient => &[(
                "WWW-Authenticate",
                "Bearer realm=\"wsgate\", error=\"insufficient_scope\"",
            )],
            _ => &[],
        }
    }

    /// Short plain-text body naming the reason.
    pub fn body(self) -> &'static str {
        use Refusal::*;
        match self {
            HeadTimeout => "request head not received in time\n",
            HeadTooLarge => "request head too large\n",
            TooManyHeaders => "too many header fields\n",
            MalformedHead => "malformed request head\n",
            AmbiguousFraming => "ambiguous message framing\n",
            BadTransferEncoding => "unsupported transfer-encoding\n",
            BadTarget => "invalid request target\n",
            BadHost => "missing, repeated or invalid Host\n",
            MisdirectedRequest => "Host does not match the TLS server name\n",
            NoRoute => "no route for this host and path\n",
            NotWebSocket => "this route only accepts WebSocket upgrades\n",
            MethodNotAllowed => "WebSocket upgrades use GET\n",
            HttpVersion => "WebSocket upgrades need HTTP/1.1\n",
            NotConnect => "WebSockets over HTTP/2 use CONNECT\n",
            NoConnectProtocol => "CONNECT needs :protocol websocket\n",
            ConnectionNotUpgrade => "Connection must list upgrade\n",
            BadKey => "missing or invalid Sec-WebSocket-Key\n",
            WsVersion => "unsupported Sec-WebSocket-Version\n",
            BodyOnUpgrade => "an upgrade request has no body\n",
            RequestBodyTooLarge => "request body too large\n",
            RequestBodyTimeout => "request body not received in time\n",
            RequestBodyIncomplete => "request body incomplete\n",
            OriginMissing => "Origin required\n",
            OriginNotAllowed => "Origin not allowed\n",
            DuplicateOrigin => "more than one Origin\n",
            TokenMissing => "authentication required\n",
            TokenInvalid => "invalid token\n",
            DuplicateToken => "more than one token\n",
            ClaimsInsufficient => "token does not grant access to this route\n",
            AuthDenied(_) => "access denied\n",
            AuthUnavailable => "authentication service unavailable\n",
            RateLimited => "too many handshakes from this address\n",
            RouteRateLimited => "too many handshakes on this route\n",
            IpConnectionsFull => "too many connections from this address\n",
            RouteFull => "route at capacity\n",
            SubjectSessionsFull => "too many sessions for this user\n",
            FleetUnavailable => "fleet state unavailable\n",
            BackendUnavailable => "backend unavailable\n",
            BackendConnectTimeout => "backend connect timed out\n",
            BackendTimeout => "backend did not answer in time\n",
            BackendClosed => "backend closed before answering\n",
            BackendMalformed => "backend sent an invalid answer\n",
            BackendBadUpgrade => "backend answered the upgrade incorrectly\n",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::Refusal::{self, *};

    /// One row per refusal: the answer an operator and a client can rely on.
    #[test]
    fn every_refusal_maps_to_one_status() {
        let table: &[(Refusal, u16, &str)] = &[
            (HeadTimeout, 408, "head_timeout"),
            (HeadTooLarge, 431, "head_too_large"),
            (TooManyHeaders, 431, "too_many_headers"),
            (MalformedHead, 400, "malformed_head"),
            (AmbiguousFraming, 400, "ambiguous_framing"),
            (BadTransferEncoding, 400, "bad_transfer_encoding"),
            (BadTarget, 400, "bad_target"),
            (BadHost, 400, "bad_host"),
            (MisdirectedRequest, 421, "misdirected_request"),
            (NoRoute, 404, "no_route"),
            (NotWebSocket, 426, "not_websocket"),
            (MethodNotAllowed, 405, "method_not_allowed"),
            (HttpVersion, 400, "http_version"),
            (NotConnect, 405, "not_connect"),
            (NoConnectProtocol, 400, "no_connect_protocol"),
            (ConnectionNotUpgrade, 400, "connection_not_upgrade"),
            (BadKey, 400, "bad_key"),
            (WsVersion, 426, "ws_version"),
            (BodyOnUpgrade, 400, "body_on_upgrade"),
            (RequestBodyTooLarge, 413, "request_body_too_large"),
            (RequestBodyTimeout, 408, "request_body_timeout"),
            (RequestBodyIncomplete, 400, "request_body_incomplete"),
            (OriginMissing, 403, "origin_missing"),
            (OriginNotAllowed, 403, "origin_not_allowed"),
            (DuplicateOrigin, 400, "duplicate_origin"),
            (TokenMissing, 401, "token_missing"),
            (TokenInvalid, 401, "token_invalid"),
            (DuplicateToken, 400, "duplicate_token"),
            (ClaimsInsufficient, 403, "claims_insufficient"),
            (AuthDenied(401), 401, "auth_denied"),
            (AuthDenied(403), 403, "auth_denied"),
            (AuthUnavailable, 503, "auth_unavailable"),
            (RateLimited, 429, "rate_limited"),
            (RouteRateLimited, 429, "route_rate_limited"),
            (IpConnectionsFull, 429, "ip_connections_full"),
            (RouteFull, 503, "route_full"),
            (SubjectSessionsFull, 429, "subject_sessions_full"),
            (FleetUnavailable, 503, "fleet_unavailable"),
            (BackendUnavailable, 502, "backend_unavailable"),
            (BackendConnectTimeout, 504, "backend_connect_timeout"),
            (BackendTimeout, 504, "backend_timeout"),
            (BackendClosed, 502, "backend_closed"),
            (BackendMalformed, 502, "backend_malformed"),
            (BackendBadUpgrade, 502, "backend_bad_upgrade"),
        ];
        let listed: Vec<&str> = Refusal::ALL.iter().map(|r| r.reason()).collect();
        let mut tabled: Vec<&str> = table.iter().map(|&(_, _, reason)| reason).collect();
        tabled.dedup();
        assert_eq!(
            listed, tabled,
            "Refusal::ALL lists every refusal once, in table order"
        );
        for &(refusal, status, reason) in table {
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.reason(), reason, "{refusal:?}");
            assert!(refusal.body().ends_with('\n'));
        }
        assert_eq!(
            NotWebSocket.headers(),
            &[("Upgrade", "websocket"), ("Connection", "Upgrade")]
        );
        assert_eq!(WsVersion.headers(), &[("Sec-WebSocket-Version", "13")]);
        assert_eq!(MethodNotAllowed.headers(), &[("Allow", "GET")]);
    }
}
