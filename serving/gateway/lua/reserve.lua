-- Admit one request for a tenant: take 1 from its request bucket and COST from its token bucket, atomically.
-- Token buckets hold at most CAP and refill CAP per WINDOW milliseconds, timed by the server clock (TIME) so every
-- gateway replica sees the same time. A rejected request takes nothing (it never drains the bucket).
-- REFUND (the unused part of this tenant's earlier reservations that this replica has not given back yet) is added
-- to the token bucket first, whether or not the request is admitted.
-- KEYS[1] request bucket, KEYS[2] token bucket (same {tenant} hash tag, so one slot in cluster mode)
-- ARGV[1] request capacity (-1 = unlimited), ARGV[2] token capacity (-1 = unlimited), ARGV[3] token cost,
-- ARGV[4] window in ms, ARGV[5] refund (>= 0; optional, default 0)
-- Returns {1, request level after, token level after} or {0, retry-after ms, which ("rpm"|"tpm")}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[4])

local function level(key, cap)
  local v = redis.call('HMGET', key, 'l', 'ts')
  local l, ts = tonumber(v[1]), tonumber(v[2])
  if l == nil or ts == nil then return cap end
  if now > ts then l = l + (now - ts) * cap / window end
  if l > cap then l = cap end
  return l
end

local function store(key, l)
  redis.call('HSET', key, 'l', tostring(l), 'ts', now)
  redis.call('PEXPIRE', key, window * 2)
end

local rcap, tcap, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local refund = tonumber(ARGV[5] or '0')
local rl, tl = nil, nil
if tcap >= 0 then
  tl = level(KEYS[2], tcap)
  if refund > 0 then
    tl = tl + refund
    if tl > tcap then tl = tcap end
  end
end
if rcap >= 0 then
  rl = level(KEYS[1], rcap)
  if rl < 1 then
    if refund > 0 and tl ~= nil then store(KEYS[2], tl) end
    return {0, math.ceil((1 - rl) * window / rcap), 'rpm'}
  end
end
if tl ~= nil and tl < cost then
  if refund > 0 then store(KEYS[2], tl) end
  return {0, math.ceil((cost - tl) * window / tcap), 'tpm'}
end
if rl ~= nil then store(KEYS[1], rl - 1) end
if tl ~= nil then store(KEYS[2], tl - cost) end
return {1, tostring(rl or -1), tostring(tl or -1)}
