"""The Lua scripts of :class:`screening.enforcement.state_redis.RedisPolicyState`.

Each runs atomically in Redis: that is what makes counting exact and measures
compare-and-set under many workers (see :mod:`screening.enforcement.state`). Keys and
arguments are documented by the Python method that calls each script.

Every script that takes a measure out of force (SWEEP, LIFT, and APPLY when it replaces
an ended measure) writes its pending lift in the same step: an entry in the ``lifts`` hash
(``{"at": …, "reason": …, "measure": …}``, built by concatenation so the measure's JSON
is kept byte for byte) and the measure id in ``lifts:due``, scored with the end of the
caller's lease. CLAIM_LIFTS takes entries whose lease ran out (their sender died) and
leases them again; the sender deletes an entry once its event is enqueued.
"""

from __future__ import annotations

__all__ = ["APPLY", "CLAIM_LIFTS", "LIFT", "RECORD_GROUP", "RECORD_USER", "RETRACT_GROUP",
           "RETRACT_USER", "SWEEP"]  # fmt: skip

RECORD_GROUP = """
local now = tonumber(ARGV[1])
local counts = {}
for i = 5, #KEYS do
  local w = tonumber(ARGV[i + 2])
  redis.call('ZADD', KEYS[i], 'NX', now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. tostring(now - w))
  counts[#counts + 1] = redis.call('ZCARD', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], math.ceil(w * 1000))
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[4]) end
if ARGV[5] ~= '' and redis.call('SCARD', KEYS[2]) < tonumber(ARGV[6]) then
  redis.call('SADD', KEYS[2], ARGV[5])
end
local rw = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - rw))
return {counts, redis.call('ZCARD', KEYS[3]), redis.call('HGETALL', KEYS[1]),
        redis.call('SMEMBERS', KEYS[2]), redis.call('SMEMBERS', KEYS[4])}
"""

RECORD_USER = """
local now = tonumber(ARGV[1])
local maximum, after, rate = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local history, block_w, repeat_w = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local stored = redis.call('HMGET', KEYS[1], 'score', 'since')
local score = tonumber(stored[1] or ARGV[5])
local since = tonumber(stored[2] or ARGV[1])
local credit = math.min(maximum, score + rate * math.max(0, now - since - after))
if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2]) == 1 then
  local penalty = tonumber(ARGV[3])
  if penalty > 0 then
    credit = math.max(0, credit - penalty)
    redis.call('HSET', KEYS[1], 'score', string.format('%.6f', credit), 'since', ARGV[1])
    if rate > 0 then
      redis.call('PEXPIRE', KEYS[1], math.ceil((after + (maximum - credit) / rate) * 1000) + 1000)
    end
  end
  if ARGV[4] == '1' then redis.call('ZADD', KEYS[3], now, ARGV[2]) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - history))
redis.call('PEXPIRE', KEYS[2], math.ceil(history * 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - block_w))
redis.call('PEXPIRE', KEYS[3], math.ceil(block_w * 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. tostring(now - repeat_w))
return {string.format('%.6f', credit), redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[5]), redis.call('HGETALL', KEYS[4]),
        redis.call('SMEMBERS', KEYS[6])}
"""

#: Writes a pending lift: ``at`` and ``lease`` are numbers as text, ``reason`` JSON text.
_PEND = """
local function pend(lifts, due, id, at, reason, doc, lease)
  local entry = '{"at":' .. at .. ',"reason":' .. reason .. ',"measure":' .. doc .. '}'
  redis.call('HSET', lifts, id, entry)
  redis.call('ZADD', due, lease, id)
end
"""

_APPLY = """
local kind, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], kind .. ':id')
if current == id then return {1, ''} end
local replaced = ''
if current then
  local untl = redis.call('HGET', KEYS[1], kind .. ':until')
  if untl == 'inf' or tonumber(untl) > now then return {0, ''} end
  replaced = redis.call('HGET', KEYS[1], kind .. ':doc') or ''
  local liftable = redis.call('ZREM', KEYS[2], KEYS[1] .. '\\n' .. kind .. '\\n' .. current)
  if liftable == 1 and replaced ~= '' then
    pend(KEYS[5], KEYS[6], current, ARGV[3], '"expired"', replaced, ARGV[9])
  end
end
redis.call('HSET', KEYS[1], kind .. ':id', id, kind .. ':until', ARGV[4], kind .. ':doc', ARGV[5])
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1] .. '\\n' .. kind .. '\\n' .. id)
end
if ARGV[7] ~= '' then
  local rw = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[3], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - rw))
  redis.call('PEXPIRE', KEYS[3], math.ceil(rw * 1000))
end
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('PEXPIRE', KEYS[4], math.ceil(tonumber(ARGV[8]) * 1000))
return {1, replaced}
"""

_SWEEP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local hash, kind, id = string.match(member, '^(.*)\\n([^\\n]*)\\n([^\\n]*)$')
  if hash and redis.call('HGET', hash, kind .. ':id') == id then
    local doc = redis.call('HGET', hash, kind .. ':doc')
    redis.call('HDEL', hash, kind .. ':id', kind .. ':until', kind .. ':doc')
    pend(KEYS[2], KEYS[3], id, ARGV[1], '"expired"', doc, ARGV[3])
    out[#out + 1] = doc
  end
end
return out
"""

#: ARGV[5]: lift only the measure of this id ('' any); ARGV[6] '1': it no longer counts
#: as an earlier suspension (KEYS[5], the history that doubles the next one).
_LIFT = """
local doc = redis.call('HGET', KEYS[1], ARGV[1] .. ':doc')
if not doc then return false end
local id = redis.call('HGET', KEYS[1], ARGV[1] .. ':id')
if ARGV[5] ~= '' and id ~= ARGV[5] then return false end
redis.call('ZREM', KEYS[2], KEYS[1] .. '\\n' .. ARGV[1] .. '\\n' .. id)
redis.call('HDEL', KEYS[1], ARGV[1] .. ':id', ARGV[1] .. ':until', ARGV[1] .. ':doc')
if ARGV[6] == '1' then redis.call('ZREM', KEYS[5], id) end
pend(KEYS[3], KEYS[4], id, ARGV[2], ARGV[3], doc, ARGV[4])
return doc
"""

#: The overturned message leaves each rule's window of its group (KEYS[4..], windows
#: ARGV[4..]); what the group holds afterwards, as RECORD_GROUP returns it.
RETRACT_GROUP = """
local now = tonumber(ARGV[1])
local counts = {}
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. tostring(now - tonumber(ARGV[i])))
  counts[#counts + 1] = redis.call('ZCARD', KEYS[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - tonumber(ARGV[3])))
return {counts, redis.call('ZCARD', KEYS[3]), redis.call('HGETALL', KEYS[1]),
        redis.call('SMEMBERS', KEYS[2])}
"""

#: Gives a counted key's penalty back once (KEYS[6] remembers the keys given back, as
#: long as KEYS[2] remembers counted ones) and takes it out of the blocks; returns the
#: credit, blocks, suspensions, measures and whether this call gave it back.
RETRACT_USER = """
local now = tonumber(ARGV[1])
local maximum, after, rate = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local history = tonumber(ARGV[8])
local restored = 0
local counted = redis.call('ZSCORE', KEYS[2], ARGV[2])
if counted and redis.call('ZADD', KEYS[6], 'NX', now, ARGV[2]) == 1 then
  restored = 1
  local stored = redis.call('HGET', KEYS[1], 'score')
  if stored and tonumber(ARGV[3]) > 0 then
    local back = math.min(maximum, tonumber(stored) + tonumber(ARGV[3]))
    redis.call('HSET', KEYS[1], 'score', string.format('%.6f', back))
  end
  redis.call('ZREM', KEYS[3], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. tostring(now - history))
redis.call('PEXPIRE', KEYS[6], math.ceil(history * 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. tostring(now - tonumber(ARGV[9])))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. tostring(now - tonumber(ARGV[10])))
local stored = redis.call('HMGET', KEYS[1], 'score', 'since')
local score = tonumber(stored[1] or ARGV[4])
local since = tonumber(stored[2] or ARGV[1])
local credit = math.min(maximum, score + rate * math.max(0, now - since - after))
return {string.format('%.6f', credit), redis.call('ZCARD', KEYS[3]),
        redis.call('ZCARD', KEYS[5]), redis.call('HGETALL', KEYS[4]), restored}
"""

CLAIM_LIFTS = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', KEYS[1], id)
  if entry then
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    out[#out + 1] = entry
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
"""

# The scripts that take a measure out of force write its pending lift with ``pend``.
APPLY = _PEND + _APPLY
SWEEP = _PEND + _SWEEP
LIFT = _PEND + _LIFT
