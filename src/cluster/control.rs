//! Session control across the fleet: one pub/sub channel (`<prefix>control`) that carries
//! operator closes (`POST /sessions/close` with `"scope": "fleet"`) and `close_oldest`
//! evictions of sessions another instance holds. Every instance listens on its own pub/sub
//! connection, reconnecting with backoff; a message from itself is ignored (it already acted).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::Fleet;
use super::link::{CallError, Link};
use crate::session::Reason;

/// Largest message acted on (a close request body is at most 16 KiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What travels on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The instance that published it.
    pub from: String,
    /// An operator close: the checked `POST /sessions/close` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<serde_json::Value>,
    /// A `close_oldest` eviction for the instance that holds the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Replace>,
}

/// Close the oldest session of `subject` on `route` held by `instance` (1008 `replaced`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replace {
    pub instance: String,
    pub route: String,
    pub subject: String,
}

impl Message {
    pub fn close(from: &str, request: serde_json::Value) -> Message {
        Message {
            from: from.to_owned(),
            close: Some(request),
            replace: None,
        }
    }

    pub fn replace(from: &str, replace: Replace) -> Message {
        Message {
            from: from.to_owned(),
            close: None,
            replace: Some(replace),
        }
    }
}

/// Publish `message` on `link`'s channel (one round trip, background budget).
pub async fn publish(link: &Link, message: Message) -> Result<(), CallError> {
    let body = serde_json::to_vec(&message).map_err(|_| CallError::Script)?;
    let mut pipe = redis::pipe();
    pipe.cmd("PUBLISH")
        .arg(link.keys.channel())
        .arg(body)
        .ignore();
    link.run("publish", &pipe, link.background_budget(), false)
        .await
}

/// Close this instance's oldest live session of `subject` on `route` (not already ending).
pub fn close_oldest(fleet: &Fleet, route: &str, subject: &str) -> bool {
    let oldest = fleet.sessions().snapshot().into_iter().find(|h| {
        *h.info.route == *route && h.info.subject.as_deref() == Some(subject) && !h.is_asked()
    });
    oldest.is_some_and(|h| h.request_close(Reason::Replaced))
}

/// Listen on `link`'s channel until the link is replaced or the fleet is gone.
pub async fn listen(fleet: Weak<Fleet>, link: Arc<Link>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if fleet.strong_count() == 0 {
            return;
        }
        let connect = tokio::time::timeout(link.background_budget(), async {
            let mut pubsub = link.client().get_async_pubsub().await?;
            pubsub.subscribe(link.keys.channel()).await?;
            Ok::<_, redis::RedisError>(pubsub)
        });
        let connected = tokio::select! {
            () = link.stop.cancelled() => return,
            c = connect => c,
        };
        if let Ok(Ok(mut pubsub)) = connected {
            backoff = BACKOFF_MIN;
            let mut messages = pubsub.on_message();
            loop {
                let next = tokio::select! {
                    () = link.stop.cancelled() => return,
                    m = messages.next() => m,
                };
                let Some(msg) = next else { break };
                let Some(f) = fleet.upgrade() else { return };
                act(&f, &link.cfg.instance, msg.get_payload_bytes());
            }
            tracing::warn!("fleet: control channel lost; reconnecting");
        }
        tokio::select! {
            () = link.stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Act on one message from the channel.
fn act(fleet: &Fleet, me: &str, payload: &[u8]) {
    if payload.len() > MAX_MESSAGE_BYTES {
        tracing::warn!(
            bytes = payload.len(),
            "fleet: control message too large; ignored"
        );
        return;
    }
    let message: Message = match serde_json::from_slice(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "fleet: control message not understood; ignored");
            return;
        }
    };
    if message.from == me {
        return;
    }
    if let Some(request) = &message.close {
        match crate::admin::sessions::close_published(request, fleet.sessions()) {
            Ok(closed) => tracing::info!(from = %message.from, closed, "fleet: operator close"),
            Err(e) => tracing::warn!(from = %message.from, error = %e, "fleet: close refused"),
        }
    }
    if let Some(r) = &message.replace
        && r.instance == me
    {
        close_oldest(fleet, &r.route, &r.subject);
    }
}
