"""TLS settings and the first hint a token-less client gives: how a client reaches Sentry."""

from __future__ import annotations

import functools
import logging
import os
import ssl as _ssl
import sys
import warnings

from .errors import Unauthorized

__all__ = [
    "TOKEN_SOURCES",
    "InsecureTLSWarning",
    "SSLSetting",
    "cleanup_closed",
    "explain_missing_token",
    "tls",
]

logger = logging.getLogger("sentry_async")

SSLSetting = _ssl.SSLContext | str | os.PathLike[str] | bool | None
"""``ssl=``: a context, a CA bundle's path, ``True``/``None`` (system CAs) or ``False``."""

TOKEN_SOURCES = "pass token=, set $SENTRY_AUTH_TOKEN, or give the CLI --token-file PATH"


class InsecureTLSWarning(UserWarning):
    """``ssl=False``: certificates are not checked, anyone on the path can read the token."""


def tls(setting: SSLSetting) -> _ssl.SSLContext | bool:
    """What aiohttp's connector takes for ``setting``; a CA bundle is loaded (and checked) now.

    A bundle replaces the system's CAs, as ``SSL_CERT_FILE`` and curl's ``--cacert`` do:
    a private CA's bundle should hold every CA the installation's certificates chain to.
    """
    if setting is None or setting is True:
        return _system_trust()
    if setting is False:
        message = (
            "TLS certificate verification is OFF (ssl=False): anyone between this process "
            "and Sentry can read the auth token and change responses. Pass the private CA "
            "instead (ssl='/path/to/ca-bundle.pem')."
        )
        warnings.warn(message, InsecureTLSWarning, stacklevel=3)
        logger.warning("%s", message)
        return False
    if isinstance(setting, _ssl.SSLContext):
        return setting
    if isinstance(setting, (str, os.PathLike)):
        path = os.fspath(setting)
        try:
            return _ssl.create_default_context(cafile=path)
        except FileNotFoundError:
            raise ValueError(f"ssl: no CA bundle at {path}") from None
        except (OSError, _ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise ValueError(f"ssl: cannot load the CA bundle {path}: {reason}") from None
    raise TypeError(
        "ssl must be an ssl.SSLContext, a CA bundle path, True, False or None "
        f"(got {type(setting).__name__})"
    )


@functools.cache
def _system_trust() -> _ssl.SSLContext:
    """The system's CAs, verified, as aiohttp's ``ssl=True`` context is: passed as a context,
    since aiohttp 3.9.0 and 3.9.1 took ``ssl=True`` for "do not verify". Made once, as
    aiohttp makes its own: loading the CAs reads the disk."""
    context = _ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def cleanup_closed() -> bool:
    """``enable_cleanup_closed=`` for the client's connector: whether this Python leaks
    closed TLS transports (cpython#118960, fixed in 3.12.8 and 3.13.1), as aiohttp says.
    ``True`` where it is fixed makes aiohttp warn (a ``DeprecationWarning``: an error under
    ``-W error``, as in a test suite's ``filterwarnings = error``). An aiohttp without the
    flag (before 3.10.11) gets the answer it would give. (Imported here: the package
    reaches ``InsecureTLSWarning`` without loading aiohttp.)"""
    import aiohttp.connector

    needed = getattr(aiohttp.connector, "NEEDS_CLEANUP_CLOSED", None)
    if isinstance(needed, bool):
        return needed
    return sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


def explain_missing_token(exc: BaseException) -> None:
    """Say where a token is looked for on the 401 a client without one gets."""
    if isinstance(exc, Unauthorized) and exc.args and "no auth token" not in str(exc.args[0]):
        exc.args = (f"{exc.args[0]} (no auth token was configured: {TOKEN_SOURCES})",)
