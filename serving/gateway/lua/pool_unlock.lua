-- Release a pool lease (serving/gateway/pools.py) only if it is still the caller's.
-- KEYS[1] the lease; ARGV[1] the caller's token. Returns 1 when released.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
