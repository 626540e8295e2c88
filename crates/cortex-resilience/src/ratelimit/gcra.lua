-- GCRA over one key; same arithmetic as cortex-resilience ratelimit/gcra.rs.
-- KEYS[1] limiter key (value: TAT, integer µs of Redis server time)
-- ARGV[1] emission interval T, integer µs >= 1  (period / permits)
-- ARGV[2] burst, integer >= 1                   (tolerance tau = (burst-1)*T)
-- ARGV[3] cost, integer >= 0                    (0 = peek, writes nothing)
-- ARGV[4] optional: "now" in µs, for deterministic tests only
-- returns {allowed 0|1, remaining, reset_after_ms, retry_after_ms}
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')                      -- {seconds, microseconds}
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])   -- ~1.8e15 < 2^53: exact
end

local tat = tonumber(redis.call('GET', KEYS[1]) or now) -- GET miss is false
if tat < now then tat = now end

local span = burst * interval                       -- tau + T
local new_tat = tat + cost * interval
local allowed, ahead, retry
if new_tat - now <= span then
  allowed, ahead, retry = 1, new_tat - now, 0
  if cost > 0 then
    -- SET .. PX = SET + PEXPIRE in one command; the key dies when TAT is
    -- reached, i.e. exactly when a missing key means the same (full burst).
    -- Pass the number, not tostring() (%.14g would round the µs away).
    redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(ahead / 1000)))
  end
else
  allowed, ahead, retry = 0, tat - now, new_tat - now - span
end
local remaining = math.max(0, math.floor((span - ahead) / interval)) -- <0 only if burst/T shrank
return {allowed, remaining, math.ceil(ahead / 1000), math.ceil(retry / 1000)}
