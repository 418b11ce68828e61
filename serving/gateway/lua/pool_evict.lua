-- Mark a pool model 'evicting' (claims on it then fail) only while nothing is in flight on it
-- (serving/gateway/pools.py); expired in-flight entries (of gateways that died) are removed first.
-- KEYS[1] state hash, KEYS[2] in-flight set of the victim
-- ARGV[1] the victim's field, ARGV[2] its expected state ('hot' or 'loaded'), ARGV[3] now (unix s)
-- Returns 1 when marked, 0 when the state changed or requests are in flight.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'evicting')
return 1
