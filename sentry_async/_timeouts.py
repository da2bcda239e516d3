"""The client's time bounds, and what they mean to aiohttp."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

__all__ = ["Timeouts"]

_DEFAULT_TOTAL = 300.0
"""The default deadline of one attempt, kept when ``timeout=`` is a plain number."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` bounds each silence of the server: from the moment its request has
    a connection until its response begins, then between arrivals of its body; ``total`` a
    whole attempt, body included, so a body that trickles in a byte at a time cannot hold a
    request (or a paginator, a fan-out, an export) for ever (a download's body, which goes at
    its consumer's pace, is bounded by ``read`` alone); ``pool`` the whole wait for a
    connection, a free pooled one or a new one, a proxy's tunnel included; ``connect`` each
    step of a new connection: reaching the host (or the proxy), a proxy's answer to
    ``CONNECT``, a TLS handshake. ``None`` turns a bound off, on purpose."""

    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = 300.0
    pool: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total", "pool"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Timeouts.{name} must be a positive number of seconds")

    @classmethod
    def of(cls, timeout: Timeouts | float | None) -> Timeouts:
        """``timeout=`` as the client takes it: a plain number is the read bound, with the
        connect bound no longer than it and the default deadline kept unless it is longer;
        ``None`` turns every bound off, as it turns off one bound here."""
        if isinstance(timeout, Timeouts):
            return timeout
        if timeout is None:
            return cls(connect=None, read=None, total=None, pool=None)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(
                "timeout must be a Timeouts, a number of seconds or None "
                f"(got {type(timeout).__name__})"
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds (got {timeout!r})")
        seconds = float(timeout)
        return cls(connect=min(seconds, 10.0), read=seconds, total=max(seconds, _DEFAULT_TOTAL))

    @classmethod
    def of_session(cls, timeout: aiohttp.ClientTimeout) -> Timeouts:
        """The bounds of a session passed in (its ``ClientTimeout``), as :meth:`to_aiohttp`
        would have given them to aiohttp."""
        return cls(
            connect=timeout.sock_connect,
            read=timeout.sock_read,
            total=timeout.total,
            pool=timeout.connect,
        )

    def to_aiohttp(self, *, connection_only: bool = False) -> aiohttp.ClientTimeout:
        """aiohttp's bounds; ``connection_only`` keeps those of the wait for a connection
        (where ``read`` and ``total`` are enforced elsewhere, by the shared deadlines)."""
        # aiohttp's ``connect`` covers the wait for a pooled connection plus connecting;
        # its ``sock_connect`` bounds each socket connection and TLS handshake, not a
        # proxy's answer to ``CONNECT``, which the exchange bounds by ``connect`` itself.
        return aiohttp.ClientTimeout(
            total=None if connection_only else self.total,
            connect=self.pool,
            sock_connect=self.connect,
            sock_read=None if connection_only else self.read,
        )
