"""What an organization auth token says of itself: the server it was made for, its
region and its organization.

Sentry writes an organization token as ``sntrys_<base64 JSON>_<secret>``, the JSON in the
clear: ``{"iat": ..., "url": <system.url-prefix>, "region_url": ..., "org": <slug>}``
(``src/sentry/utils/security/orgauthtoken_token.py``, ``generate_token``). A client that
reads it can send the token only where it was made, as sentry-cli does. Parsed as
Sentry's ``parse_token`` parses it (two underscores, a payload with a truthy ``iat``);
anything else is not an organization token, and nothing here raises.
"""

from __future__ import annotations

from base64 import b64decode

import msgspec
from yarl import URL

from .hosts import origin

__all__ = [
    "ORG_TOKEN_PREFIX",
    "OrgTokenClaims",
    "org_token_claims",
    "server_refusal",
    "servers",
]

ORG_TOKEN_PREFIX = "sntrys_"


class OrgTokenClaims(msgspec.Struct, frozen=True):
    """The public part of an organization token; ``None`` where the token says nothing
    usable (a field missing, or not a non-empty string)."""

    url: str | None
    """The Sentry installation's URL (its ``system.url-prefix``)."""
    region_url: str | None
    """The organization's region (``https://us.sentry.io``; self-hosted: ``url`` again)."""
    org: str | None
    """The organization's slug: the only one the token can act on."""


def org_token_claims(token: str) -> OrgTokenClaims | None:
    """The claims of ``token`` when it is an organization token, else ``None``."""
    if not token.startswith(ORG_TOKEN_PREFIX) or token.count("_") != 2:
        return None
    payload = token[len(ORG_TOKEN_PREFIX) : token.rindex("_")]
    try:
        # Sentry's b64decode, which skips characters outside the alphabet, then ASCII.
        decoded = msgspec.json.decode(b64decode(payload.encode("ascii")).decode("ascii"))
    except Exception:  # as Sentry's parse_token: any failure (RecursionError too) is None
        return None
    if not isinstance(decoded, dict) or not decoded.get("iat"):
        return None
    return OrgTokenClaims(
        url=_text(decoded.get("url")),
        region_url=_text(decoded.get("region_url")),
        org=_text(decoded.get("org")),
    )


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def servers(claims: OrgTokenClaims) -> list[URL]:
    """The token's server and region as http(s) URLs, those that parse as such."""
    found = []
    for text in (claims.url, claims.region_url):
        if text is None:
            continue
        try:
            url = URL(text)
            if url.scheme in ("http", "https") and url.host:
                found.append(url)
        except (TypeError, ValueError):
            continue
    return found


def server_refusal(claims: OrgTokenClaims, base: URL) -> str | None:
    """Why an organization token must not go to ``base``, or ``None`` when it may: its
    own server or region, whatever the path; nothing to compare with when it names none."""
    made_for = servers(claims)
    if not made_for or origin(base) in {origin(url) for url in made_for}:
        return None
    shown = " or ".join(dict.fromkeys(str(url.origin()) for url in made_for))
    return (
        f"the organization token was made for {shown}, not {base.origin()}: it would go to "
        "a server that did not issue it (leave out base_url and $SENTRY_URL to use the "
        "token's own server, or use a token made on that server)"
    )
