//! A counting global allocator: the system allocator, plus live bytes and live blocks in total,
//! per power-of-two size class, and per 16-byte size step below 8 KiB (to name a block by size). What the process asked for and still holds — no allocator
//! slack, no pages the allocator keeps after a free — so a difference between two snapshots is
//! what the sessions opened in between hold. [`trace_sizes`] names a block by where it was
//! allocated: the first few allocations with a size in a range print a backtrace to stderr.
// A `GlobalAlloc` cannot be written without `unsafe`; this module alone needs it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Size classes: class `k` holds blocks of `2^(k-1) + 1 ..= 2^k` bytes (class 0: 0 and 1).
pub const CLASSES: usize = 40;

/// Blocks below this size are also counted per [`STEP`]-byte size step.
pub const EXACT_LIMIT: usize = 8192;
pub const STEP: usize = 16;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static CLASS_BYTES: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static CLASS_BLOCKS: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static EXACT_BLOCKS: [AtomicI64; EXACT_LIMIT / STEP] =
    [const { AtomicI64::new(0) }; EXACT_LIMIT / STEP];

/// Sizes to trace (`TRACE_FROM..=TRACE_TO`, off while `TRACE_TO` is 0) and backtraces left.
static TRACE_FROM: AtomicUsize = AtomicUsize::new(0);
static TRACE_TO: AtomicUsize = AtomicUsize::new(0);
static TRACES_LEFT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread captures a backtrace: its own allocations are not traced.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Print a backtrace for each of the next `count` allocations with a size in `sizes`.
pub fn trace_sizes(sizes: RangeInclusive<usize>, count: usize) {
    TRACE_FROM.store(*sizes.start(), Ordering::Relaxed);
    TRACES_LEFT.store(count, Ordering::Relaxed);
    TRACE_TO.store(*sizes.end(), Ordering::Relaxed);
}

fn maybe_trace(size: usize) {
    let to = TRACE_TO.load(Ordering::Relaxed);
    if to == 0 || size > to || size < TRACE_FROM.load(Ordering::Relaxed) {
        return;
    }
    if TRACING.get() {
        return;
    }
    let left = TRACES_LEFT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    if left.is_err() {
        return;
    }
    TRACING.set(true);
    let trace = std::backtrace::Backtrace::force_capture();
    let _ = writeln!(std::io::stderr(), "allocation of {size} bytes:\n{trace}");
    TRACING.set(false);
}

/// The system allocator, counted.
pub struct Counting;

fn class(size: usize) -> usize {
    let bits = usize::BITS - size.saturating_sub(1).leading_zeros();
    (bits as usize).min(CLASSES - 1)
}

fn record(size: usize, sign: i64) {
    let bytes = sign * i64::try_from(size).unwrap_or(i64::MAX);
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(sign, Ordering::Relaxed);
    let k = class(size);
    CLASS_BYTES[k].fetch_add(bytes, Ordering::Relaxed);
    CLASS_BLOCKS[k].fetch_add(sign, Ordering::Relaxed);
    if size < EXACT_LIMIT {
        EXACT_BLOCKS[size / STEP].fetch_add(sign, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the counters are only arithmetic on the
// sizes of the layouts, done after a successful allocation and after a deallocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size(), 1);
            maybe_trace(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        record(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds `realloc`'s rules.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            record(layout.size(), -1);
            record(new_size, 1);
        }
        p
    }
}

/// Live heap now: `(bytes, blocks)`.
pub fn live() -> (i64, i64) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

/// Per size class with live blocks: `(upper bound in bytes, blocks, bytes)`.
pub fn classes() -> Vec<(u64, i64, i64)> {
    (0..CLASSES)
        .map(|k| {
            let blocks = CLASS_BLOCKS[k].load(Ordering::Relaxed);
            let bytes = CLASS_BYTES[k].load(Ordering::Relaxed);
            (1u64 << k, blocks, bytes)
        })
        .filter(|(_, blocks, _)| *blocks != 0)
        .collect()
}

/// Per size step with live blocks: `(smallest size of the step, blocks)`.
pub fn steps() -> Vec<(usize, i64)> {
    (0..EXACT_LIMIT / STEP)
        .map(|i| (i * STEP, EXACT_BLOCKS[i].load(Ordering::Relaxed)))
        .filter(|(_, blocks)| *blocks != 0)
        .collect()
}
