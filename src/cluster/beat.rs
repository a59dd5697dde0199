//! The background half of the fleet: the heartbeat of one link (the instance list, a touch of
//! every cap this instance holds members under, and re-registration of every member when Redis
//! lost them), and the releaser (frees dropped slots in batches, retrying the ones that failed).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use super::held::{Release, member};
use super::link::{CallError, Link};
use super::{DEAD_AFTER, FLEET_TTL, Fleet, HEARTBEAT, KEY_TTL, scripts};

/// While Redis does not answer, the heartbeat tries this often.
const DOWN_RETRY: Duration = Duration::from_millis(500);
/// Scripts per pipeline (one round trip each).
const PER_PIPELINE: usize = 256;
/// Members per `REGISTER` call (Lua's argument stack stays small).
const PER_REGISTER: usize = 200;
/// Failed releases kept for retry; past it the heartbeat expiry frees them when needed.
const MAX_PENDING: usize = 100_000;

/// Heartbeat `link` until it is replaced or the fleet is gone.
pub async fn run(fleet: Weak<Fleet>, link: Arc<Link>) {
    loop {
        let Some(f) = fleet.upgrade() else {
            // The gateway is gone: its control listener stops too.
            link.stop.cancel();
            return;
        };
        let pause = match beat(&f, &link).await {
            Ok(()) => HEARTBEAT,
            Err(e) => {
                tracing::debug!(error = e.kind(), "fleet: heartbeat failed");
                DOWN_RETRY
            }
        };
        drop(f);
        tokio::select! {
            () = link.stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One heartbeat: the instance list, then touch (or, after a gap, re-register) every cap held.
async fn beat(fleet: &Fleet, link: &Link) -> Result<(), CallError> {
    let (hb, n) = link.keys.fleet();
    let mut pipe = redis::pipe();
    let args = [
        link.cfg.instance.clone(),
        fleet.sessions().len().to_string(),
        DEAD_AFTER.as_millis().to_string(),
        FLEET_TTL.as_millis().to_string(),
    ];
    scripts::call(&mut pipe, &scripts::HEARTBEAT, &[&hb, &n], &args);
    let budget = link.background_budget();
    let (gap,): (i64,) = link.run("heartbeat", &pipe, budget, false).await?;
    // No previous heartbeat (a new server, lost data) or one old enough that other instances
    // may have dropped this one's members: put them all back.
    let margin = (DEAD_AFTER - HEARTBEAT).as_millis();
    if gap < 0 || u128::from(gap.unsigned_abs()) >= margin {
        if !fleet.held().is_empty() {
            tracing::info!(gap_ms = gap, "fleet: registering the live slots again");
        }
        register_all(fleet, link).await
    } else {
        touch_all(fleet, link).await
    }
}

async fn touch_all(fleet: &Fleet, link: &Link) -> Result<(), CallError> {
    let ttl = KEY_TTL.as_millis().to_string();
    for chunk in fleet.held().tags().chunks(PER_PIPELINE) {
        let mut pipe = redis::pipe();
        for tag in chunk {
            let (m, i) = link.keys.cap(tag);
            let args = [link.cfg.instance.clone(), ttl.clone()];
            scripts::call(&mut pipe, &scripts::TOUCH, &[&m, &i], &args);
        }
        pipe.ignore();
        let () = link
            .run("touch", &pipe, link.background_budget(), false)
            .await?;
    }
    Ok(())
}

async fn register_all(fleet: &Fleet, link: &Link) -> Result<(), CallError> {
    let ttl = KEY_TTL.as_millis().to_string();
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for (tag, members) in fleet.held().members() {
        let (m, i) = link.keys.cap(&tag);
        for chunk in members.chunks(PER_REGISTER) {
            let mut args = vec![link.cfg.instance.clone(), ttl.clone()];
            for (n, started) in chunk {
                args.push(started.to_string());
                args.push(member(&link.cfg.instance, *n));
            }
            scripts::call(&mut pipe, &scripts::REGISTER, &[&m, &i], &args);
            queued += 1;
            if queued == PER_PIPELINE {
                send(link, std::mem::take(&mut pipe)).await?;
                queued = 0;
            }
        }
    }
    if queued > 0 {
        send(link, pipe).await?;
    }
    Ok(())
}

async fn send(link: &Link, mut pipe: redis::Pipeline) -> Result<(), CallError> {
    pipe.ignore();
    link.run("register", &pipe, link.background_budget(), false)
        .await
}

/// Free dropped slots: every release waiting is sent in one pipeline; a batch that fails is
/// kept and sent again with the next one (at least every heartbeat).
pub async fn release(fleet: Weak<Fleet>, mut rx: mpsc::UnboundedReceiver<Release>) {
    let mut pending: Vec<Release> = Vec::new();
    loop {
        // `Some(None)`: time to retry what is pending; `None`: every sender is gone.
        let next: Option<Option<Release>> = if pending.is_empty() {
            rx.recv().await.map(Some)
        } else {
            match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
                Ok(Some(r)) => Some(Some(r)),
                Ok(None) => None,
                Err(_) => Some(None),
            }
        };
        let Some(first) = next else { return };
        pending.extend(first);
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        let Some(f) = fleet.upgrade() else { return };
        let Some(link) = f.link() else {
            // Left the fleet: nothing to free anywhere.
            f.held().settled(pending.len());
            pending.clear();
            continue;
        };
        let sent: Vec<Release> = pending
            .drain(..pending.len().min(4 * PER_PIPELINE))
            .collect();
        let mut pipe = redis::pipe();
        for (tag, n) in &sent {
            let (m, _) = link.keys.cap(tag);
            pipe.cmd("ZREM")
                .arg(m)
                .arg(member(&link.cfg.instance, *n))
                .ignore();
        }
        let result: Result<(), CallError> = link
            .run("release", &pipe, link.background_budget(), false)
            .await;
        match result {
            Ok(()) => f.held().settled(sent.len()),
            Err(_) => {
                pending.extend(sent);
                if pending.len() > MAX_PENDING {
                    f.held().settled(pending.len() - MAX_PENDING);
                    pending.truncate(MAX_PENDING);
                }
            }
        }
    }
}
