-- Settle a reservation: give back what was reserved but not used, or charge the excess if the upstream reported
-- more than was reserved (the level may go below zero; later requests then wait until it refills).
-- KEYS[1] token bucket; ARGV[1] capacity, ARGV[2] reserved, ARGV[3] used, ARGV[4] window in ms
-- Returns the token level after settling.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, reserved, used, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'l', 'ts')
local l, ts = tonumber(v[1]), tonumber(v[2])
if l == nil or ts == nil then l = cap; ts = now end
if now > ts then l = l + (now - ts) * cap / window end
if l > cap then l = cap end
l = l + (reserved - used)
if l > cap then l = cap end
redis.call('HSET', KEYS[1], 'l', tostring(l), 'ts', now)
redis.call('PEXPIRE', KEYS[1], window * 2)
return tostring(l)
