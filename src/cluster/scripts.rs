//! The Lua scripts the fleet runs in Redis/Valkey, each one atomic call (EVALSHA) over keys that
//! share a hash tag. Time is the server's (`TIME`), so instances with skewed clocks agree.
//!
//! - [`GCRA`]: one handshake against a rate: the theoretical arrival time in one key with a
//!   `PX` expiry (a key lives only as long as its rate remembers anything).
//! - [`ACQUIRE`]: one session slot under a cap. Members are `instance/n` scored by start time;
//!   a second key scores each instance by its last touch. Members of instances not touched
//!   within the dead interval stop counting and are removed on the spot (a crashed instance's
//!   slots free themselves). With `close_oldest` the oldest members are evicted and returned.
//!   The slot asked for never counts against itself (a heartbeat may have registered it while
//!   the call was on its way), and a refused slot is left out.
//! - [`TOUCH`]: an instance still holds members under a cap (every heartbeat).
//! - [`REGISTER`]: put an instance's live members back (after Redis lost its data).
//! - [`HEARTBEAT`]: the instance list, with its session count; answers how long since this
//!   instance's previous heartbeat (-1: none), which tells a Redis restart or a long outage.
//! - [`INSTANCES`]: the live instances for `GET /fleet`.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: state. ARGV: emission interval (µs), burst. → `{1, 0}` or `{0, retry_after_µs}`.
pub static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tau then
  return {0, new_tat - tau - now}
end
local ttl = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
return {1, 0}
",
    )
});

/// KEYS: members, instances. ARGV: member, instance, max, close_oldest (1/0), dead ms, ttl ms.
/// → `{admitted, counted, evicted members}`.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now - tonumber(ARGV[5])
local live = {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], cutoff, '+inf')) do
  live[name] = true
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff)
local kept = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = string.match(m, '^(.*)/[^/]*$')
  if m == ARGV[1] then
    -- This very slot, put back by a heartbeat that ran meanwhile: not counted twice.
  elseif owner and live[owner] then
    kept[#kept + 1] = m
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
local max = tonumber(ARGV[3])
local evicted = {}
if #kept >= max then
  if ARGV[4] ~= '1' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    return {0, #kept, evicted}
  end
  for j = 1, #kept - max + 1 do
    evicted[#evicted + 1] = kept[j]
    redis.call('ZREM', KEYS[1], kept[j])
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {1, #kept - #evicted + 1, evicted}
",
    )
});

/// KEYS: members, instances. ARGV: instance, ttl ms. → 1.
pub static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
",
    )
});

/// KEYS: members, instances. ARGV: instance, ttl ms, then start ms and member pairs. → 1.
pub static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for j = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[j], ARGV[j + 1])
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
",
    )
});

/// KEYS: heartbeats, session counts. ARGV: instance, sessions, dead ms, ttl ms.
/// → ms since this instance's previous heartbeat, or -1.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local cutoff = now - tonumber(ARGV[3])
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)) do
  redis.call('HDEL', KEYS[2], name)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if not prev then return -1 end
return now - tonumber(prev)
",
    )
});

/// KEYS: heartbeats, session counts. ARGV: dead ms. → flat `{name, last ms, sessions, ...}`.
pub static INSTANCES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local seen = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'WITHSCORES')
for j = 1, #seen, 2 do
  out[#out + 1] = seen[j]
  out[#out + 1] = seen[j + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], seen[j]) or '0'
end
return out
",
    )
});

/// Every script, to load them into a server that restarted.
pub fn all() -> [&'static Script; 6] {
    [&GCRA, &ACQUIRE, &TOUCH, &REGISTER, &HEARTBEAT, &INSTANCES]
}

/// `EVALSHA` of `script` with `keys` and `args`, for a pipeline.
pub fn call(pipe: &mut redis::Pipeline, script: &Script, keys: &[&str], args: &[String]) {
    let cmd = pipe.cmd("EVALSHA").arg(script.get_hash()).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    for a in args {
        cmd.arg(a.as_str());
    }
}
