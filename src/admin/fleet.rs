//! `GET /fleet`: the live instances of the fleet as Redis knows them, as a JSON array of
//! `{"instance", "last_heartbeat" (RFC 3339 UTC), "sessions"}`. 404 without `cluster:`, 503
//! when Redis does not answer.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::sessions::error;
use super::{Answer, JSON, plain};
use crate::cluster::Fleet;

/// One instance as `GET /fleet` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub instance: String,
    /// RFC 3339 UTC (whole seconds).
    pub last_heartbeat: String,
    pub sessions: u64,
}

/// `GET /fleet`.
pub async fn list(fleet: &Fleet) -> Answer {
    if !fleet.is_configured() {
        let msg = "no `cluster:` block: this instance is not part of a fleet";
        return error(StatusCode::NOT_FOUND, msg);
    }
    match fleet.instances().await {
        Ok(instances) => {
            let views: Vec<InstanceView> = instances
                .into_iter()
                .map(|i| InstanceView {
                    instance: i.name,
                    last_heartbeat: super::time::rfc3339_secs(i.last_heartbeat_ms / 1000),
                    sessions: i.sessions,
                })
                .collect();
            match serde_json::to_vec(&views) {
                Ok(body) => plain(StatusCode::OK, JSON, body.into()),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        Err(e) => {
            let msg = format!("Redis did not answer ({})", e.kind());
            error(StatusCode::SERVICE_UNAVAILABLE, &msg)
        }
    }
}
