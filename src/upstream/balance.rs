//! Picking one backend of a pool for a new tunnel, and the request bytes a hashing pool hashes.
//!
//! Owns: the four `balance:` modes (smooth weighted round robin, weighted least connections,
//! power of two random choices, weighted rendezvous hashing), each choosing only among the
//! backends the caller calls usable, and [`hash_key`]. Does not own health, passive ejection or
//! the failover loop (the caller's `usable` predicate carries all three), nor the live tunnel
//! counts (the caller's `live`).
//!
//! Hashing is the one mode whose answer must agree across a fleet: the seed is fixed, a backend
//! is known by the hash of its URL (not its position in the file, which edits shift), and the
//! logarithm in the weighted score uses IEEE basic operations only, so no libm difference between
//! builds or platforms can move a key.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::{Balance, HashKey};
use crate::wire::{self, Target};
use crate::wire::{Fields, Head};

/// The rendezvous hashing seed. Never change it: every instance running an older build would
/// then send each key elsewhere than the newer ones during a rolling upgrade.
const SEED: u64 = 0x7773_6761_7465_6877; // "wsgatehw"

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RoundRobin,
    LeastConnections,
    RandomTwo,
    Hash,
}

/// Chooses backends for one pool. Cheap to call on every new connection (well under 1 µs for
/// 100 backends in every mode); `Send + Sync`, shared by all connections of a pool.
#[derive(Debug)]
pub struct Balancer {
    mode: Mode,
    /// Configured weights, at least 1.
    weights: Box<[u32]>,
    /// Rendezvous identity of each backend: xxh3 of its URL.
    ids: Box<[u64]>,
    /// Rendezvous weight class of each backend: an index into `class_inv_weights`.
    class: Box<[usize]>,
    /// `1 / weight` of each distinct weight, for the weighted rendezvous score.
    class_inv_weights: Box<[f64]>,
    /// Smooth weighted round robin: the `current_weight` of each backend (nginx's algorithm).
    current: Mutex<Vec<i64>>,
}

impl Balancer {
    /// A balancer for `backends`, given as `(url, weight)` in configuration order. The indices
    /// [`Balancer::pick`] returns are positions in this slice. A weight of 0 counts as 1.
    pub fn new(balance: &Balance, backends: &[(&str, u32)]) -> Balancer {
        let mode = match balance {
            Balance::RoundRobin => Mode::RoundRobin,
            Balance::LeastConnections => Mode::LeastConnections,
            Balance::RandomTwo => Mode::RandomTwo,
            Balance::Hash(_) => Mode::Hash,
        };
        let weights: Box<[u32]> = backends.iter().map(|(_, w)| (*w).max(1)).collect();
        let mut distinct = weights.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Balancer {
            mode,
            ids: backends
                .iter()
                .map(|(url, _)| xxh3_64_with_seed(url.as_bytes(), SEED))
                .collect(),
            class: weights
                .iter()
                // Always found: `distinct` holds every weight.
                .map(|w| distinct.binary_search(w).unwrap_or(0))
                .collect(),
            class_inv_weights: distinct.iter().map(|&w| 1.0 / f64::from(w)).collect(),
            current: Mutex::new(vec![0; weights.len()]),
            weights,
        }
    }

    /// Pick one backend index among those for which `usable(i)` is true (healthy, not ejected,
    /// not yet tried in this failover round). `live(i)` is the backend's open tunnels now. `key`
    /// is the hash key when the mode is hashing; `None` there falls back to least connections.
    /// `None` when no backend is usable.
    ///
    /// Both closures must be cheap and must not call back into this balancer: round robin calls
    /// `usable` while holding its lock.
    pub fn pick(
        &self,
        usable: impl Fn(usize) -> bool,
        live: impl Fn(usize) -> u32,
        key: Option<&[u8]>,
    ) -> Option<usize> {
        match (self.mode, key) {
            (Mode::RoundRobin, _) => self.round_robin(usable),
            (Mode::RandomTwo, _) => self.random_two(usable, live),
            (Mode::Hash, Some(key)) => self.rendezvous(key, usable),
            (Mode::LeastConnections, _) | (Mode::Hash, None) => {
                self.least_connections(usable, live)
            }
        }
    }

    /// nginx's smooth weighted round robin over the usable backends: each adds its weight to its
    /// current weight, the largest wins and gives back the usable total. Weights 5:1:1 give
    /// `a a b a c a a`, not `a a a a a b c`. An unusable backend keeps its current weight
    /// frozen, and the usable ones keep summing to what they summed to before, so their
    /// proportions hold while it is out and it rejoins without a burst.
    fn round_robin(&self, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, (c, &w)) in current.iter_mut().zip(self.weights.iter()).enumerate() {
            if !usable(i) {
                continue;
            }
            *c += i64::from(w);
            total += i64::from(w);
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (i, _) = best?;
        if let Some(c) = current.get_mut(i) {
            *c -= total;
        }
        Some(i)
    }

    /// The usable backend with the least load after taking this tunnel, `(live + 1) / weight`:
    /// the `+ 1` makes an idle pool fill by weight, not by index. The scan starts at a random
    /// backend and keeps the first strict minimum, so ties are broken at random and one backend
    /// does not absorb every tie.
    fn least_connections(
        &self,
        usable: impl Fn(usize) -> bool,
        live: impl Fn(usize) -> u32,
    ) -> Option<usize> {
        let n = self.weights.len();
        let start = below(n);
        let mut best: Option<(usize, u64, u64)> = None;
        for i in (start..n).chain(0..start) {
            if !usable(i) {
                continue;
            }
            let (load, weight) = (u64::from(live(i)) + 1, self.weight(i));
            // load_i / weight_i < load_b / weight_b, without division; no overflow: u32 × u32.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                best = Some((i, load, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }

    /// Power of two choices: two distinct usable backends at random, the less loaded (as in
    /// [`Self::least_connections`]) wins. Never the most loaded of several, and no herd on the
    /// least loaded one when many gateways pick at once from slightly stale counts.
    fn random_two(
        &self,
        usable: impl Fn(usize) -> bool,
        live: impl Fn(usize) -> u32,
    ) -> Option<usize> {
        let n = self.weights.len();
        let a = first_usable(below(n), n, None, &usable)?;
        let Some(b) = (n > 1)
            .then(|| first_usable((a + 1 + below(n - 1)) % n, n, Some(a), &usable))
            .flatten()
        else {
            return Some(a);
        };
        let load = |i: usize| u64::from(live(i)) + 1;
        Some(if load(b) * self.weight(a) < load(a) * self.weight(b) {
            b
        } else {
            a
        })
    }

    /// Weighted rendezvous (highest random weight) hashing: each usable backend scores
    /// `-weight / ln(u)`, with `u` in (0, 1) from xxh3 of the key under the backend's identity;
    /// the highest score wins. Removing a backend moves only the keys it won; a backend's share of
    /// keys is its share of the weight. Equivalent form used here: the lowest `-ln(u) / weight`.
    ///
    /// The key is hashed once and the 64-bit digest rehashed per backend, so a long key (a
    /// session cookie) costs one pass, not one per backend. Among backends of equal weight the
    /// score grows with `u`, so only the largest draw of each weight class needs a logarithm:
    /// one per distinct weight, not one per backend.
    fn rendezvous(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        const NONE: (u64, usize) = (0, usize::MAX);
        let classes = self.class_inv_weights.len();
        let mut on_stack = [NONE; 16];
        let mut on_heap = Vec::new();
        let best = if classes <= on_stack.len() {
            &mut on_stack[..classes]
        } else {
            on_heap.resize(classes, NONE);
            &mut on_heap[..]
        };
        let digest = xxh3_64_with_seed(key, SEED).to_le_bytes();
        for (i, (&id, &class)) in self.ids.iter().zip(self.class.iter()).enumerate() {
            if !usable(i) {
                continue;
            }
            let draw = xxh3_64_with_seed(&digest, SEED ^ id);
            if let Some(slot) = best.get_mut(class)
                && (slot.1 == usize::MAX || draw > slot.0)
            {
                *slot = (draw, i);
            }
        }
        let mut winner: Option<(usize, f64)> = None;
        for (&(draw, i), inv_weight) in best.iter().zip(self.class_inv_weights.iter()) {
            if i == usize::MAX {
                continue;
            }
            // 52 high bits, centred in their bucket: u is strictly inside (0, 1).
            let u = ((draw >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64);
            let score = -ln(u) * inv_weight;
            if winner.is_none_or(|(_, w)| score < w) {
                winner = Some((i, score));
            }
        }
        winner.map(|(i, _)| i)
    }

    fn weight(&self, i: usize) -> u64 {
        self.weights.get(i).map_or(1, |&w| u64::from(w))
    }
}

/// The first usable index at or after `start`, wrapping, other than `skip`.
fn first_usable(
    start: usize,
    n: usize,
    skip: Option<usize>,
    usable: &impl Fn(usize) -> bool,
) -> Option<usize> {
    (start..n)
        .chain(0..start)
        .find(|&i| Some(i) != skip && usable(i))
}

/// Natural logarithm of `x` in (0, 1) from `+ - × ÷` only, which IEEE 754 rounds the same on
/// every platform (libm's `ln` may differ in the last bit between builds, and a rendezvous
/// score must not). `x = m · 2^e` with `m` in [√½, √2); `ln m = 2 atanh(s)`, `s = (m-1)/(m+1)`,
/// `|s| < 0.172`: eight series terms leave a relative error below 1e-14.
fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0
                    + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 / 15.0))))));
    e as f64 * std::f64::consts::LN_2 + 2.0 * s * series
}

thread_local! {
    /// wyrand state, seeded once per thread from std's randomly keyed hasher.
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
}

/// A uniform index below `n` (0 when `n` is 0). Not cryptographic: it only spreads load.
fn below(n: usize) -> usize {
    let r = RNG.with(|state| {
        // wyrand (Wang Yi): one add, one 128-bit multiply.
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    });
    // Lemire's multiply-shift: no division, negligible bias.
    ((u128::from(r) * n as u128) >> 64) as usize
}

/// The bytes a `hash` pool hashes for this request, `None` when the request lacks the key (the
/// pool then falls back to least connections). An empty value counts as missing: hashing it
/// would pile every such client onto one backend.
///
/// - `header NAME`: the first line's value, as received;
/// - `cookie NAME`: the first such cookie across the `Cookie` lines, without quotes;
/// - `query NAME`: the first such parameter, percent-decoded (names compared decoded);
/// - `path`: the normalised path, without the query;
/// - `client_ip`: the 16-byte form, IPv4 as IPv4-mapped IPv6, so both spellings of one client agree;
/// - `subprotocol`: the first offered subprotocol.
pub fn hash_key(
    key: &HashKey,
    head: &Head,
    target: &Target,
    client_ip: IpAddr,
    protocols: &[String],
) -> Option<Vec<u8>> {
    let bytes = match key {
        HashKey::Header(name) => head.values(name).next()?.to_vec(),
        HashKey::Cookie(name) => cookie(head, name)?,
        HashKey::Query(name) => query(&target.query, name)?,
        HashKey::Path => target.path.as_bytes().to_vec(),
        HashKey::ClientIp => match client_ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        },
        HashKey::Subprotocol => protocols.first()?.as_bytes().to_vec(),
    };
    (!bytes.is_empty()).then_some(bytes)
}

/// RFC 6265 §5.4 `name=value` pairs separated by `;`; names are case-sensitive.
fn cookie(head: &Head, name: &str) -> Option<Vec<u8>> {
    head.values("cookie")
        .flat_map(|line| line.split(|&b| b == b';'))
        .find_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (k, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            (k == name.as_bytes()).then(|| {
                v.strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v)
                    .to_vec()
            })
        })
}

/// The first `name` parameter of a query (with or without its leading `?`), percent-decoded.
fn query(query: &str, name: &str) -> Option<Vec<u8>> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (wire::percent_decode(k) == name.as_bytes()).then(|| wire::percent_decode(v))
        })
}

#[cfg(test)]
mod tests;
