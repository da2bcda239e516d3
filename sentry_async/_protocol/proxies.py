"""Which proxy a request goes through: the environment read as ``urllib`` reads it.

aiohttp's ``trust_env`` would do this too, but it also reads ``~/.netrc`` and could attach
credentials found there; this module reads only ``*_proxy`` variables and ``NO_PROXY``,
and keeps the proxy's own credentials out of every URL, repr and message.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import unquote

from yarl import URL

from .errors import Redactor
from .hosts import is_loopback

__all__ = [
    "ENVIRONMENT",
    "FromEnvironment",
    "ProxySettings",
    "bypasses",
    "proxies_from_env",
    "proxy_settings",
    "proxy_settings_or_error",
    "safe_proxy_url",
    "tunnel_refusal_is_final",
]

_SCHEMES = ("http", "https")


def proxies_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``{scheme: proxy}`` plus ``"no"`` for ``NO_PROXY``, exactly as
    :func:`urllib.request.getproxies_environment` builds it: any case, the lowercase
    variable wins (an empty one removes the other), and ``HTTP_PROXY`` is ignored when
    ``REQUEST_METHOD`` says this is a CGI script (httpoxy)."""
    proxies: dict[str, str] = {}
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            proxies[lowered[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            lowered = name.lower()
            if value:
                proxies[lowered[:-6]] = value
            else:
                proxies.pop(lowered[:-6], None)
    return proxies


def bypasses(host: str, port: int | None, no_proxy: str | None) -> bool:
    """Whether ``NO_PROXY`` exempts ``host``: ``*``, or a comma-separated list of names that
    match the host itself or any subdomain (a leading dot is ignored), optionally with a
    port. The rules of :func:`urllib.request.proxy_bypass_environment`, which sees the
    URL's netloc: an IPv6 host is matched in brackets (``[::1]``, ``[::1]:9000``)."""
    if not no_proxy:
        return False
    if no_proxy.strip() == "*":
        return True
    hostonly = host.strip("[]").lower()
    if ":" in hostonly:
        hostonly = f"[{hostonly}]"
    with_port = f"{hostonly}:{port}" if port is not None else hostonly
    for entry in no_proxy.split(","):
        name = entry.strip().lstrip(".").lower()
        if not name:
            continue
        if name in (hostonly, with_port):
            return True
        if hostonly.endswith("." + name) or with_port.endswith("." + name):
            return True
    return False


def safe_proxy_url(url: URL) -> str:
    """The proxy URL as it may be shown: scheme, host and port, never its credentials."""
    return str(url.with_user(None).with_password(None).with_path("").with_query(None))


def _parse_proxy(value: str, source: str) -> tuple[URL, tuple[str, str] | None] | str:
    """The proxy's URL without credentials and its ``(user, password)``, decoded, or why
    ``value`` is refused, naming only its scheme: returned, not raised, since a traceback
    printed with its frames' locals would show this frame's, the password's among them."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text  # "proxy:3128", as urllib and curl accept it
    try:
        url = URL(text)
        host = url.host  # decoded here: a name that fails IDNA raises UnicodeError
    except (TypeError, ValueError):
        return f"{source} is not a proxy URL"
    if url.scheme not in _SCHEMES or not host:
        return f"{source} must be an http:// or https:// proxy URL (got scheme {url.scheme!r})"
    credentials = None
    if url.user is not None or url.password is not None:
        credentials = (unquote(url.raw_user or ""), unquote(url.raw_password or ""))
    return URL(safe_proxy_url(url)), credentials


def _basic(user: str, password: str) -> str:
    """The ``Proxy-Authorization`` value of a proxy URL's credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class ProxySettings:
    """Where each request goes: straight to the host, or through a proxy.

    ``proxies`` maps a request scheme to a proxy URL (it may carry ``user:password@``);
    ``no_proxy`` is a ``NO_PROXY`` list. Credentials are kept apart from the URL and only
    leave as a ``Proxy-Authorization`` header, so no repr, log line or error built from
    the proxy's URL can show them.
    """

    __slots__ = ("_auth", "_invalid", "_no_proxy", "_redactor", "_urls")

    def __init__(
        self, proxies: Mapping[str, str], no_proxy: str | None = None, *, source: str = "proxy"
    ) -> None:
        self._urls: dict[str, URL] = {}
        self._auth: dict[str, str] = {}
        # As urllib, a value is an error only once a request would use it: an https client
        # does not care that HTTP_PROXY names a socks5:// proxy.
        self._invalid: dict[str, str] = {}
        found: list[tuple[str, str]] = []
        for scheme in _SCHEMES:
            value = proxies.get(scheme)
            if value:
                parsed = _parse_proxy(value, source.format(scheme=scheme.upper()))
                if isinstance(parsed, str):
                    self._invalid[scheme] = parsed
                    continue
                self._urls[scheme], credentials = parsed
                if credentials is not None:
                    self._auth[scheme] = _basic(*credentials)
                    found.append(credentials)
        self._no_proxy = no_proxy
        self._redactor = _credentials_redactor(found)

    def __bool__(self) -> bool:
        return bool(self._urls or self._invalid)

    def __repr__(self) -> str:
        routes = ", ".join(f"{scheme}={safe_proxy_url(url)}" for scheme, url in self._urls.items())
        return f"ProxySettings({routes or 'direct'}, no_proxy={self._no_proxy!r})"

    def proxy_for(self, url: URL) -> URL | None:
        """The proxy ``url`` goes through (credentials stripped), or ``None`` for direct;
        a ``ValueError`` naming the variable if that proxy's value is unusable."""
        if bypasses(url.host or "", url.explicit_port, self._no_proxy):
            return None
        invalid = self._invalid.get(url.scheme)
        if invalid is not None:
            raise ValueError(invalid)
        return self._urls.get(url.scheme)

    def route(self, url: URL, headers: dict[str, str]) -> tuple[URL | None, dict[str, str] | None]:
        """``(proxy, proxy_headers)`` for aiohttp's request, for a request to ``url``.

        An https request tunnels through ``CONNECT``: the proxy's credentials go on the
        ``CONNECT`` and everything else (the token included) inside TLS. A plain http
        request is forwarded whole, so the credentials join its own ``headers``.
        """
        proxy = self.proxy_for(url)
        if proxy is None:
            return None, None
        authorization = self._auth.get(url.scheme)
        if authorization is None:
            return proxy, None
        if url.scheme == "https":
            return proxy, {"Proxy-Authorization": authorization}
        headers["Proxy-Authorization"] = authorization
        return proxy, None

    def redact(self, body: bytes) -> bytes:
        """``body`` with the proxy's credentials blanked out: a proxy's error page that
        echoes the request must not carry them into an exception."""
        return self._redactor.body(body)

    @property
    def reach(self) -> int:
        """The longest text :meth:`redact` blanks out, in bytes."""
        return self._redactor.reach

    def redact_text(self, text: str) -> str:
        """``text`` with the proxy's credentials blanked out: a proxy's reason phrase (and
        so aiohttp's exception) may echo them as well as its page."""
        return self._redactor.text(text)

    def check_plain_http(self, url: URL, allow_insecure_http: bool) -> None:
        """Refuse to send a plain http request, and so the token, to a proxy off this host.

        Plain http is allowed for loopback because the bytes never leave the machine; sent
        through a proxy they do, so the proxy itself must be loopback (or the caller must
        have accepted clear text with ``allow_insecure_http=True``). Called for every
        origin the client will talk to, it also refuses an unusable proxy for ``url``.
        """
        proxy = self.proxy_for(url)
        if url.scheme != "http" or allow_insecure_http:
            return
        if proxy is not None and not is_loopback(proxy.host):
            raise ValueError(
                f"refusing plain http:// to {url.host} through proxy {safe_proxy_url(proxy)}: "
                "the token would travel unencrypted off this machine (use https, list the "
                "host in NO_PROXY, or pass allow_insecure_http=True)"
            )


def _credentials_redactor(credentials: Iterable[tuple[str, str]]) -> Redactor:
    """What blanks each secret out of a proxy's echo, in every form the token's
    :class:`Redactor` knows (percent-encoded as written in the proxy URL, JSON, base64...),
    and the ``Basic`` value (the base64 of ``user:password``) whole.

    The secret is the password or, with none beside it, the user name: an API key as
    ``http://KEY:@proxy`` (as some commercial proxies take it) is the whole credential. A
    user name beside a password names an account, and stays readable in a proxy's page.
    Taken as the URL held them, not split back out of ``user:password``: either may hold a
    colon."""
    pairs = list(credentials)
    return Redactor.of(
        [password or user for user, password in pairs],
        encoded=[f"{user}:{password}" for user, password in pairs],
    )


def tunnel_refusal_is_final(status: int) -> bool:
    """Whether a proxy's answer to ``CONNECT`` ends the call at once: a refusal (407 for
    wrong credentials, 403 for a blocked host) stays the same on a retry, and retrying a
    407 resends the rejected credentials (enough failed logins lock the account on many
    company proxies). A 5xx is the proxy failing, retried like any connection failure;
    so are 408 and 429, which ask to try again."""
    return 400 <= status < 500 and status not in (408, 429)


class FromEnvironment(enum.Enum):
    """The type of :data:`ENVIRONMENT`."""

    ENVIRONMENT = "environment"

    def __repr__(self) -> str:
        return "ENVIRONMENT"


ENVIRONMENT: Final = FromEnvironment.ENVIRONMENT
"""The default of ``proxy=``: take the proxy from the environment, as ``urllib`` does."""


def proxy_settings(
    proxy: str | FromEnvironment | None, environ: Mapping[str, str]
) -> ProxySettings:
    """The settings for the client's ``proxy=`` argument.

    ``ENVIRONMENT`` (the default) reads ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``; a URL
    sends every request through that proxy; ``None`` goes direct whatever the environment
    says.
    """
    settings = proxy_settings_or_error(proxy, environ)
    # Neither is a local of a refusal's traceback: the URL may hold a password, and the
    # environment, printed as a local, shows every variable.
    del proxy, environ
    if isinstance(settings, Exception):
        raise settings
    return settings


def proxy_settings_or_error(
    proxy: object, environ: Mapping[str, str]
) -> ProxySettings | TypeError | ValueError:
    """What :func:`proxy_settings` returns, or the error it raises, returned: for a caller
    that raises it once none of its own locals holds the URL (``SentryClient()``)."""
    if proxy is None:
        return ProxySettings({})
    if proxy is ENVIRONMENT:
        found = proxies_from_env(environ)
        return ProxySettings(found, found.get("no"), source="${scheme}_PROXY")
    if not isinstance(proxy, str):
        return TypeError(f"proxy must be a URL string or None (got {type(proxy).__name__})")
    settings = ProxySettings({"http": proxy, "https": proxy}, source="proxy=")
    refused = settings._invalid.get("https")  # used for every request: refused at once
    return settings if refused is None else ValueError(refused)
