-- Claim a hot pool model for one request (serving/gateway/pools.py): only while the engine is hot (and the adapter
-- loaded), add the request to the in-flight set of the engine (and adapter) and record the use.
-- KEYS[1] state hash, KEYS[2] last-use hash, KEYS[3] use-count hash, KEYS[4] in-flight set of the engine,
-- KEYS[5] in-flight set of the adapter (KEYS[4] again without one)
-- ARGV[1] engine field, ARGV[2] adapter field or '', ARGV[3] request id, ARGV[4] its expiry (unix s),
-- ARGV[5] now (unix s), ARGV[6] in-flight set TTL (ms), ARGV[7] half-life of the use count (s)
-- The use count decays as serving/gateway/pool_policy.py record_use does: count x 2^(-age / half-life) + 1.
-- Returns 1 when claimed, 0 when the model is not hot there.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'hot' then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[2]) ~= 'loaded' then return 0 end
local ttl = math.floor(tonumber(ARGV[6]))
local now, half = tonumber(ARGV[5]), tonumber(ARGV[7])
local function use(zkey, field)
  redis.call('ZADD', zkey, ARGV[4], ARGV[3])
  redis.call('PEXPIRE', zkey, ttl)
  local last = tonumber(redis.call('HGET', KEYS[2], field) or '0')
  local uses = tonumber(redis.call('HGET', KEYS[3], field) or '0')
  local age = math.max(0, now - last)
  redis.call('HSET', KEYS[3], field, tostring(uses * math.pow(2, -age / half) + 1))
  redis.call('HSET', KEYS[2], field, tostring(math.max(now, last)))
end
use(KEYS[4], ARGV[1])
if ARGV[2] ~= '' then use(KEYS[5], ARGV[2]) end
return 1
