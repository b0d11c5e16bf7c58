"""Pacing sends to providers: a Redis token bucket shared by every worker process, and Retry-After."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from redis import Redis

# Tokens may go negative: a caller that finds too few reserves them anyway and is told how long
# to wait, so concurrent callers queue up behind each other instead of all retrying at once.
# Redis's own clock (TIME) keeps workers on different hosts in step.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
tokens = tokens - wanted
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', at))
redis.call('PEXPIRE', KEYS[1], math.ceil((wait + burst / rate) * 1000) + 1000)
return string.format('%.6f', wait)
"""


@dataclass(frozen=True)
class Limit:
    rate_per_second: float
    burst: float


# LINE publishes 200 multicast and 2,000 push requests/s per channel, each its own limit; the
# bursts are kept small so jitter between our reservation and LINE's clock never adds up to a 429.
# Twilio queues messages per sender and allows 1 call per second (CPS) per account unless raised;
# its limits are as tight as its bursts are small, so we pace under them, one at a time: a request
# held up on its way must not let the next, sent on time, arrive too early. Calls get more room,
# as a CPS limit allows no burst at all.
MESSAGES_HEADROOM = 0.9
CALLS_HEADROOM = 0.8


def twilio_calls(calls_per_second: float) -> Limit:
    """The pace of an account's calls (its CPS)."""
    return Limit(calls_per_second * CALLS_HEADROOM, 1)


DEFAULT_LIMITS: dict[str, Limit] = {
    "line": Limit(200, 20),
    "line_push": Limit(2000, 200),
    "twilio_messages": Limit(10 * MESSAGES_HEADROOM, 1),
    "twilio_calls": twilio_calls(1),
}


class TokenBucket:
    """`rate_per_second` tokens, at most `burst` saved up, shared through one Redis key."""

    def __init__(self, redis: Redis, key: str, rate_per_second: float, burst: float) -> None:
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError("rate_per_second and burst must be positive")
        self.key = key
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._script = redis.register_script(_ACQUIRE)

    def acquire(self, n: float = 1) -> float:
        """Reserve `n` tokens; the seconds the caller must wait before using them (0: go now)."""
        # The script answers a string: Redis would truncate a Lua number to an integer.
        wait = self._script(keys=[self.key], args=[self.rate_per_second, self.burst, n])
        return float(wait)


def bucket_for(redis: Redis, tenant_id: int | str, provider: str,
               limits: dict[str, Limit] | None = None) -> TokenBucket:
    """The bucket of one tenant and provider (`line` multicast, `line_push`, `twilio_messages`,
    `twilio_calls`)."""
    limit = (limits or DEFAULT_LIMITS)[provider]
    return TokenBucket(redis, f"mimamori:ratelimit:{tenant_id}:{provider}", limit.rate_per_second,
                       limit.burst)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
