"""Failed log-ins, counted in the cache: a password cannot be guessed faster than a person types.

Three counters per failure, each a fixed window of LOGIN_THROTTLE_WINDOW seconds from its first
failure: username + client IP (LOGIN_THROTTLE_FAILURES), client IP alone (4×: one address trying
many names) and username alone (10×: many addresses trying one name, while one attacker cannot
lock a colleague out with a handful of guesses). A blocked attempt is refused before the password
is checked, with the same message whether the username exists or not. Keys are digests: no
username or address is stored in the cache as such. Every failure is audited, the one that reaches
a limit marked `throttled`; attempts refused while blocked are not (one row each would let anyone
fill the audit table at request rate).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from clinic_ai.accounts.models import User
from clinic_ai.core.services import audit_record

logger = logging.getLogger(__name__)
# What the cache (Django's RedisCache) raises when Redis is away or refuses.
_CACHE_DOWN = (RedisError, OSError)


@dataclass(frozen=True)
class _Counter:
    key: str
    limit: int


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with BEHIND_PROXY the address our proxy appended."""
    if settings.BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _counters(username: str, ip: str) -> list[_Counter]:
    name = username.strip().casefold()
    limit = settings.LOGIN_THROTTLE_FAILURES
    return [
        _Counter(f"login-fail:user-ip:{_digest(name, ip)}", limit),
        _Counter(f"login-fail:ip:{_digest(ip)}", limit * 4),
        _Counter(f"login-fail:user:{_digest(name)}", limit * 10),
    ]


def login_blocked(*, username: str, ip: str) -> bool:
    """Whether a limit is reached. Without the cache (Redis down) log-in stays open rather than
    failing for everyone: the failures are still audited, and the warning says why counting stopped."""
    counters = _counters(username, ip)
    try:
        counts = cache.get_many([c.key for c in counters])
    except _CACHE_DOWN as exc:
        logger.warning("Log-in throttle unavailable (%s): failed log-ins are not counted", type(exc).__name__)
        return False
    return any(counts.get(c.key, 0) >= c.limit for c in counters)


def _count(key: str) -> int:
    window = settings.LOGIN_THROTTLE_WINDOW
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)  # keeps the window the first failure opened
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return 1


def login_failure_record(*, username: str, ip: str) -> bool:
    """Count one failed log-in and audit it; True when this failure reached a limit.

    The audit row names the account only when it exists (a mistyped password in the username
    field is not kept) and never holds the password.
    """
    reached = False
    try:
        for counter in _counters(username, ip):
            if _count(counter.key) == counter.limit:
                reached = True
    except _CACHE_DOWN:
        pass  # logged by login_blocked, which ran first
    account = User.objects.filter(username=username).first()
    audit_record(
        action="auth.login_failed",
        actor=None,
        obj=account,
        data={"known_user": account is not None, "ip": ip, "throttled": reached},
    )
    return reached


def login_success_record(*, username: str, ip: str) -> None:
    """A right password clears the username + IP counter; the IP and username counters run on."""
    try:
        cache.delete(_counters(username, ip)[0].key)
    except _CACHE_DOWN:
        pass  # logged by login_blocked, which ran first
