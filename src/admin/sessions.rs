//! The session routes of the admin API: `GET /sessions` lists the live sessions as JSON (filtered
//! by `?subject=` and `?route=`), `POST /sessions/close` asks the sessions a JSON selector picks
//! to end with an operator close code and reason.
//!
//! Owns the wire shapes ([`SessionView`], [`CloseRequest`], [`Closed`]; the `wsgate sessions`
//! client reads the same types), the request checks (every fault is a 400 naming the field, and
//! nothing is closed), and the body bounds ([`MAX_BODY_BYTES`], [`BODY_TIMEOUT`]). Does not own
//! routing or the bearer check (`super`), nor how a session ends once asked
//! (`crate::session::Handle::request_close`, honoured by the tunnel task).

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::{Body as _, Incoming};
use serde::{Deserialize, Serialize};

use super::time::{rfc3339, rfc3339_secs};
use super::{Answer, JSON, plain};
use crate::cluster::Fleet;
use crate::session::reason::{
    MAX_REASON_BYTES, OPERATOR_CODE, OPERATOR_TEXT, operator_code_allowed,
};
use crate::session::{Handle, Reason, Registry};

/// Largest `POST /sessions/close` body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The whole body within this long.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// One live session as `GET /sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: u64,
    pub subject: Option<String>,
    pub client: String,
    pub route: String,
    pub backend: String,
    /// RFC 3339 UTC.
    pub started: String,
    pub bytes_to_backend: u64,
    pub bytes_to_client: u64,
    pub messages_to_backend: u64,
    pub messages_to_client: u64,
    /// The token's `exp` as RFC 3339 UTC, if the session has a token.
    pub expires_at: Option<String>,
    pub protocol: String,
}

impl SessionView {
    fn of(h: &Handle) -> SessionView {
        let (bytes_to_backend, bytes_to_client, messages_to_backend, messages_to_client) =
            h.counters.read();
        SessionView {
            id: h.id,
            subject: h.info.subject.as_deref().map(str::to_owned),
            client: h.info.client.to_string(),
            route: h.info.route.to_string(),
            backend: h.info.backend.to_string(),
            started: rfc3339(h.info.started),
            bytes_to_backend,
            bytes_to_client,
            messages_to_backend,
            messages_to_client,
            expires_at: h.info.expires_at.map(rfc3339_secs),
            protocol: h.info.protocol.as_str().to_owned(),
        }
    }
}

/// The `POST /sessions/close` body: selectors (at least one; all must match) and the Close
/// the sessions' clients are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The client IP address, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Close code (default 1008); must pass [`operator_code_allowed`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Close reason (default `closed by operator`), at most 123 bytes of UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `local` (default): this instance; `fleet`: also published to every other instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The `POST /sessions/close` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// How many sessions of this instance were asked to close (sessions already ending are
    /// not counted).
    pub closed: usize,
    /// With `"scope": "fleet"`: whether the request reached the fleet's channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<bool>,
}

/// An error answer: `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Answer {
    let body = serde_json::json!({ "error": message }).to_string();
    plain(status, JSON, body.into())
}

fn json<T: Serialize>(value: &T) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => plain(StatusCode::OK, JSON, body.into()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /sessions[?subject=S][&route=R]`: the live sessions, oldest first.
pub fn list(query: Option<&str>, registry: &Registry) -> Answer {
    let (mut subject, mut route) = (None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "subject" => subject = Some(value.into_owned()),
            "route" => route = Some(value.into_owned()),
            other => {
                let msg = format!("unknown query parameter `{other}` (expected subject, route)");
                return error(StatusCode::BAD_REQUEST, &msg);
            }
        }
    }
    let views: Vec<SessionView> = registry
        .snapshot()
        .iter()
        .filter(|h| subject.is_none() || h.info.subject.as_deref() == subject.as_deref())
        .filter(|h| route.as_ref().is_none_or(|r| *h.info.route == **r))
        .map(|h| SessionView::of(h))
        .collect();
    json(&views)
}

/// `POST /sessions/close`: read and check the body, then close what it selects.
pub async fn close(body: Incoming, fleet: &Fleet) -> Answer {
    let too_big = || {
        let msg = format!("body over {MAX_BODY_BYTES} bytes");
        error(StatusCode::PAYLOAD_TOO_LARGE, &msg)
    };
    // A declared Content-Length over the cap is refused before any body byte is read.
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return too_big();
    }
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_big(),
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
        Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "body not received in time"),
    };
    let (selection, fleet_wide) = match check(&bytes) {
        Ok(checked) => checked,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    if fleet_wide && !fleet.is_configured() {
        let msg = "scope: `fleet` needs a `cluster:` block in the config";
        return error(StatusCode::BAD_REQUEST, msg);
    }
    let closed = apply(&selection, fleet.sessions());
    if !fleet_wide {
        return json(&Closed {
            closed,
            published: None,
        });
    }
    // Other instances get the same checked request, as written (they check it again).
    let mut request: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(fields) = request.as_object_mut() {
        fields.remove("scope");
    }
    match fleet.publish_close(request).await {
        Ok(()) => json(&Closed {
            closed,
            published: Some(true),
        }),
        Err(e) => {
            let body = serde_json::json!({
                "closed": closed,
                "published": false,
                "error": format!("fleet channel unavailable ({})", e.kind()),
            });
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                body.to_string().into(),
            )
        }
    }
}

/// A close request another instance published: checked again, then applied here.
pub fn close_published(request: &serde_json::Value, registry: &Registry) -> Result<usize, String> {
    let bytes = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let (selection, _) = check(&bytes)?;
    Ok(apply(&selection, registry))
}

/// A checked close: who, and with what Close.
pub struct Selection {
    id: Option<u64>,
    subject: Option<String>,
    route: Option<String>,
    client: Option<IpAddr>,
    reason: Reason,
}

impl Selection {
    fn picks(&self, h: &Handle) -> bool {
        self.id.is_none_or(|id| h.id == id)
            && (self.subject.is_none() || h.info.subject.as_deref() == self.subject.as_deref())
            && self.route.as_ref().is_none_or(|r| *h.info.route == **r)
            && self.client.is_none_or(|ip| h.info.client == ip)
    }
}

/// Ask every session `selection` picks to close.
fn apply(selection: &Selection, registry: &Registry) -> usize {
    let closed = registry.close_where(|h| selection.picks(h), &selection.reason);
    tracing::info!(
        closed,
        reason = ?selection.reason,
        "admin: sessions asked to close"
    );
    closed
}

/// The checks of a close request, each fault named; nothing is closed on any of them. Public
/// for the fuzz target (`fuzz/fuzz_targets/admin_body.rs`); the second value is `scope: fleet`.
pub fn check(body: &[u8]) -> Result<(Selection, bool), String> {
    let req: CloseRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid close request: {e}"))?;
    if req.id.is_none() && req.subject.is_none() && req.route.is_none() && req.client.is_none() {
        return Err("no selector: give at least one of id, subject, route, client".into());
    }
    let client = match &req.client {
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| format!("client: `{text}` is not an IP address"))?,
        ),
        None => None,
    };
    let code = req.code.unwrap_or(OPERATOR_CODE);
    if !operator_code_allowed(code) {
        return Err(format!(
            "code: {code} is not allowed (1000, 1001, 1008, 1011, 1012, 1013 or 4000-4999)"
        ));
    }
    let text = req.reason.unwrap_or_else(|| OPERATOR_TEXT.to_owned());
    if text.len() > MAX_REASON_BYTES {
        return Err(format!(
            "reason: {} bytes, at most {MAX_REASON_BYTES} fit in a Close frame",
            text.len()
        ));
    }
    let fleet_wide = match req.scope.as_deref() {
        None | Some("local") => false,
        Some("fleet") => true,
        Some(other) => return Err(format!("scope: `{other}` is not `local` or `fleet`")),
    };
    let selection = Selection {
        id: req.id,
        subject: req.subject,
        route: req.route,
        client,
        reason: Reason::Operator { code, text },
    };
    Ok((selection, fleet_wide))
}

#[cfg(test)]
mod tests;
