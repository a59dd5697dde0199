//! Reload when a file the config names changes: the config file itself, certificates, keys, CA
//! bundles, JWT keys and JWKS documents (the list comes from
//! [`crate::config::files::watched_files`]).
//!
//! Files are not watched themselves but through their **parent directories** (non-recursive):
//! editors and config managers replace a file by writing a temporary one and renaming it over,
//! which a watch on the old inode never sees, and Kubernetes updates a mounted ConfigMap or
//! Secret by swapping a `..data` symlink in the directory. So an event counts when its path is one
//! of the files or a directory on the way to one (a swapped directory symlink), or when its name
//! starts with `..` in a watched directory. Symlinked files are followed hop by hop (certbot's
//! `live/` links): each link's directory is watched too. A watched directory reached through a
//! symlink that now points elsewhere is watched again on the next refresh.
//!
//! The notify-debouncer-full thread collects events for [`DEBOUNCE`] and hands each batch over
//! a channel to a tokio task, which runs [`crate::Reloader::reload`] (the same path as SIGHUP)
//! and logs the result. One burst can straddle two batches, so the task takes what arrives
//! within [`SETTLE`] before reloading; changes that arrive while a reload runs cause exactly one
//! more reload after it. After a successful reload the config is read again to refresh the
//! watched set. A directory that cannot be watched is logged and skipped: SIGHUP stays the
//! primary trigger.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Reloader;
use crate::lifecycle::systemd;

/// How long the debouncer waits for a burst of events (write, rename, symlink swap) to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// After the first relevant batch, how long to wait for the rest of the burst (the debouncer
/// releases each event [`DEBOUNCE`] after it happened, at ticks of a quarter of that).
pub const SETTLE: Duration = Duration::from_millis(100);

/// Symlink hops followed from a named file (a loop ends here too).
const MAX_LINK_HOPS: usize = 8;

/// The running watcher. Dropping it stops the watches and the task (after a reload in progress,
/// so a swap is never cut in half).
pub struct WatchHandle {
    stop: CancellationToken,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    reloads: AtomicU64,
    failed: AtomicU64,
}

impl WatchHandle {
    /// Reloads this watcher has finished, successful or not (counted after the result is logged
    /// and the runtime swapped, so a test can wait on it instead of sleeping).
    pub fn reloads(&self) -> u64 {
        self.counts.reloads.load(Ordering::SeqCst)
    }

    /// Of [`WatchHandle::reloads`], those refused (the running config stayed).
    pub fn failed_reloads(&self) -> u64 {
        self.counts.failed.load(Ordering::SeqCst)
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Watch the parent directories of `files` and reload through `reloader` when one of them
/// changes. `files` as [`crate::config::files::watched_files`] returns them: the config file
/// first, which is read again after each successful reload to learn the new list.
///
/// Must be called inside a tokio runtime. Fails only when the watcher itself cannot start (no
/// runtime, inotify instances exhausted); a directory that cannot be watched is logged instead.
pub fn spawn(reloader: Reloader, files: Vec<PathBuf>) -> std::io::Result<WatchHandle> {
    let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        match result {
            // A send fails only once the task has stopped; nothing is left to tell.
            Ok(events) => drop(tx.send(Change::from_events(&events))),
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watch error");
                }
                // Events may have been lost: assume the worst.
                drop(tx.send(Change::Unknown));
            }
        }
    })
    .map_err(std::io::Error::other)?;
    let config = files.first().cloned();
    let mut watched = Watched {
        debouncer,
        dirs: BTreeMap::new(),
        files: HashSet::new(),
    };
    watched.update(Targets::of(&files));
    let stop = CancellationToken::new();
    let counts = Arc::new(Counts::default());
    let task = Task {
        reloader,
        config,
        watched,
        rx,
        stop: stop.clone(),
        counts: Arc::clone(&counts),
    };
    runtime.spawn(task.run());
    Ok(WatchHandle { stop, counts })
}

/// One debounced batch, reduced to what the task needs.
#[derive(Debug)]
enum Change {
    /// Paths of events that may change what a file reads as.
    Paths(Vec<PathBuf>),
    /// The backend lost events (queue overflow, watch error): anything may have changed.
    Unknown,
}

impl Change {
    fn from_events(events: &[notify_debouncer_full::DebouncedEvent]) -> Change {
        if events.iter().any(|e| e.need_rescan()) {
            return Change::Unknown;
        }
        let paths = events
            .iter()
            .filter(|e| changes_content(&e.kind))
            .flat_map(|e| e.paths.iter().cloned())
            .collect();
        Change::Paths(paths)
    }
}

/// Opening and reading a file (a reload does both) is not a change; finishing a write is.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The files to match and the directories to watch, as absolute paths (events come back as the
/// watched directory joined with a name, so both sides are spelled the same way). Each directory
/// maps to where it resolves now (`None`: it does not), to tell a swapped symlink.
#[derive(Debug, Default, PartialEq)]
struct Targets {
    dirs: BTreeMap<PathBuf, Option<PathBuf>>,
    files: HashSet<PathBuf>,
}

impl Targets {
    /// Each file, and each symlink it leads through, with its directory. Reads links only.
    fn of(files: &[PathBuf]) -> Targets {
        let mut targets = Targets::default();
        for file in files {
            let mut path = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            for _ in 0..MAX_LINK_HOPS {
                let Some(dir) = path.parent().map(Path::to_path_buf) else {
                    break;
                };
                if !targets.dirs.contains_key(&dir) {
                    targets
                        .dirs
                        .insert(dir.clone(), std::fs::canonicalize(&dir).ok());
                }
                if !targets.files.insert(path.clone()) {
                    break;
                }
                match std::fs::read_link(&path) {
                    Ok(next) => path = dir.join(next),
                    Err(_) => break,
                }
            }
        }
        targets
    }
}

/// The debouncer and what it watches now.
struct Watched {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    /// Directories with a live watch and where they resolved then (a failed one is tried again
    /// on the next update).
    dirs: BTreeMap<PathBuf, Option<PathBuf>>,
    files: HashSet<PathBuf>,
}

impl Watched {
    /// Watch what `targets` needs and drop the watches it no longer does. A directory that now
    /// resolves elsewhere (its symlink was swapped) is watched again: the old watch follows the
    /// old directory.
    fn update(&mut self, targets: Targets) {
        let stale: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|(dir, was)| targets.dirs.get(*dir) != Some(*was))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in stale {
            if let Err(e) = self.debouncer.unwatch(&dir) {
                // Already gone with its directory (a Kubernetes timestamped dir, say).
                tracing::debug!(dir = %dir.display(), error = %e, "unwatch");
            }
            self.dirs.remove(&dir);
        }
        for (dir, resolved) in targets.dirs {
            if self.dirs.contains_key(&dir) {
                continue;
            }
            match self.debouncer.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "watching for config changes");
                    self.dirs.insert(dir, resolved);
                }
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot watch this directory; changes there need SIGHUP"
                ),
            }
        }
        self.files = targets.files;
    }

    /// True when `change` touches a named file, a directory on the way to one, or a `..`-name
    /// in a watched directory.
    fn relevant(&self, change: &Change) -> bool {
        let Change::Paths(paths) = change else {
            return true;
        };
        paths.iter().any(|p| {
            self.files.iter().any(|f| f.starts_with(p))
                || (p
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b".."))
                    && p.parent().is_some_and(|d| self.dirs.contains_key(d)))
        })
    }
}

/// The tokio side: waits for relevant changes and reloads, one at a time.
struct Task {
    reloader: Reloader,
    config: Option<PathBuf>,
    watched: Watched,
    rx: mpsc::UnboundedReceiver<Change>,
    stop: CancellationToken,
    counts: Arc<Counts>,
}

impl Task {
    async fn run(mut self) {
        loop {
            let change = tokio::select! {
                _ = self.stop.cancelled() => return,
                change = self.rx.recv() => match change {
                    Some(change) => change,
                    None => return,
                },
            };
            if !self.watched.relevant(&change) {
                continue;
            }
            loop {
                // The rest of the burst is covered by this reload.
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(SETTLE) => {}
                }
                while self.rx.try_recv().is_ok() {}
                self.reload().await;
                // Whatever arrived during the reload is covered by one more.
                let mut again = false;
                while let Ok(change) = self.rx.try_recv() {
                    again |= self.watched.relevant(&change);
                }
                if !again || self.stop.is_cancelled() {
                    break;
                }
            }
        }
    }

    async fn reload(&mut self) {
        systemd::reloading();
        match self.reloader.reload().await {
            Ok(generation) => {
                tracing::info!(
                    generation,
                    trigger = "file change",
                    "configuration reloaded"
                );
                self.refresh().await;
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(
                        error = %e,
                        trigger = "file change",
                        "reload refused; the running configuration stays"
                    );
                }
                self.counts.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
        systemd::ready();
        self.counts.reloads.fetch_add(1, Ordering::SeqCst);
    }

    /// Read the config again (off the runtime) and watch what the new one names.
    async fn refresh(&mut self) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let read = tokio::task::spawn_blocking(move || {
            let config = crate::config::load_file(&config)?;
            Ok::<_, crate::config::ConfigErrors>(Targets::of(&crate::config::files::watched_files(
                &config,
            )))
        })
        .await;
        match read {
            Ok(Ok(targets)) => self.watched.update(targets),
            // Changed again since the reload read it: the next event brings another reload.
            Ok(Err(errors)) => {
                tracing::debug!(%errors, "config changed after reload; watches kept")
            }
            Err(e) => tracing::warn!(error = %e, "refreshing the watched files failed"),
        }
    }
}

#[cfg(test)]
mod tests;
