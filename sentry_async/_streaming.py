"""Requests whose bodies are files: downloads streamed in chunks, multipart uploads.

The transport reads every response whole, which is right for JSON and wrong for an
attachment or a replay recording. These helpers send through the same session, limiter
slot, token rules, redirect checks, retry decisions and error mapping, but hand the body
over chunk by chunk (or write it to a file) and never hold all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import anyio

from ._protocol.errors import build_api_error
from ._protocol.hosts import endpoint_group, origin, resolve_redirect
from ._protocol.params import Params, encode_params
from ._protocol.ratelimit import parse_rate_limit, parse_retry_after
from ._protocol.retry import decide
from ._transport import Response
from .errors import ConnectionFailed, RequestTimeout, UnsafeRedirect

if TYPE_CHECKING:
    from .client import SentryClient

__all__ = ["FileInput", "download", "stream", "upload"]

FileInput = bytes | str | os.PathLike[str] | AsyncIterable[bytes]
"""File contents for an upload: the bytes, a path to read, or an async iterator of chunks."""

T = TypeVar("T")

_ERROR_BODY_CAP = 64 * 1024
"""How much of an error response is read for its message."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


@contextlib.asynccontextmanager
async def _open(
    client: SentryClient,
    method: str,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None,
    data: Any = None,
    replayable: bool = True,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """A successful response whose body is not read yet, inside the endpoint's limiter slot.

    Failures before the body starts are retried as the transport retries them.
    """
    transport = client._get_transport()
    url = client.url_for(path, path_params)
    query = encode_params(params)
    if query:
        url = url.extend_query(query)
    group = endpoint_group(method, path)
    idempotent = method == "GET"
    attempt = 0
    while True:
        attempt += 1
        delay: float | None = None
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(transport.limiter.slot(group))
            target = url
            for _ in range(_MAX_REDIRECTS + 1):
                headers = dict(transport._headers)
                headers["Accept"] = "*/*"
                if transport._token is not None and origin(target) in transport.trusted_origins:
                    headers["Authorization"] = f"Bearer {transport._token.reveal()}"
                proxy, proxy_headers = (
                    (None, None)
                    if transport._proxy is None
                    else transport._proxy.route(target, headers)
                )
                try:
                    response = await stack.enter_async_context(
                        transport.session.request(
                            method,
                            target,
                            data=data() if callable(data) else data,
                            headers=headers,
                            allow_redirects=False,
                            timeout=transport._timeout,
                            proxy=proxy,
                            proxy_headers=proxy_headers,
                        )
                    )
                except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    timed_out = isinstance(exc, asyncio.TimeoutError)
                    if timed_out:
                        message = "no response in time"
                    elif isinstance(exc, aiohttp.ClientResponseError):
                        # Its request_info holds the request's headers (the token, a proxy's
                        # credentials): the message only, never the exception itself.
                        message = f"malformed response: {exc.message or type(exc).__name__}"
                    else:
                        message = f"{type(exc).__name__}: {exc}"
                    error: Exception = (
                        RequestTimeout(message, method=method, url=str(target))
                        if timed_out
                        else ConnectionFailed(message, method=method, url=str(target))
                    )
                    cause = None if isinstance(exc, aiohttp.ClientResponseError) else exc
                    decision = decide(
                        attempt=attempt,
                        policy=transport.retry,
                        idempotent=idempotent and replayable,
                        kind="timeout" if timed_out else "connection",
                        rng=transport._rng,
                    )
                    certificate = isinstance(exc, aiohttp.ClientConnectorCertificateError)
                    if not decision.retry or certificate:
                        raise error from cause
                    delay = decision.delay
                    break
                if response.status in _REDIRECTS and "Location" in response.headers:
                    try:
                        target, trusted = resolve_redirect(
                            target, response.headers["Location"],
                            frozenset(transport.trusted_origins),
                        )
                    except ValueError as exc:
                        raise UnsafeRedirect(
                            f"refusing an unparsable redirect: {exc}", method=method, url=str(url)
                        ) from exc
                    if not trusted:
                        raise UnsafeRedirect(
                            "refusing to follow a redirect to an untrusted origin",
                            method=method,
                            url=str(url),
                        )
                    response.release()
                    continue
                rate_limit = parse_rate_limit(response.headers)
                transport.limiter.observe(group, rate_limit)
                if response.status < 400:
                    yield response
                    return
                body = await response.content.read(_ERROR_BODY_CAP)
                wall = time.time()
                decision = decide(
                    attempt=attempt,
                    policy=transport.retry,
                    idempotent=idempotent,
                    kind="status",
                    status=response.status,
                    headers=response.headers,
                    rate_limit=rate_limit,
                    now=wall,
                    rng=transport._rng,
                )
                if decision.server_wait:
                    transport.limiter.block(group, decision.delay)
                if not decision.retry or not replayable:
                    raise build_api_error(
                        response.status,
                        transport._redact(body),
                        method=method,
                        url=str(url),
                        rate_limit=rate_limit,
                        retry_after=parse_retry_after(response.headers.get("retry-after"), wall)
                        if response.status == 429
                        else None,
                    )
                delay = decision.delay
                break
            else:
                raise UnsafeRedirect("too many redirects", method=method, url=str(url))
        if delay is not None:
            await anyio.sleep(delay)


async def stream(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None = None,
    chunk_size: int = 65536,
) -> AsyncIterator[bytes]:
    """The response body of a GET, ``chunk_size`` bytes at a time (the last may be shorter)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (got {chunk_size!r})")
    async with _open(client, "GET", path, path_params=path_params, params=params) as response:
        try:
            async for chunk in response.content.iter_chunked(chunk_size):
                yield chunk
        except aiohttp.ClientPayloadError as exc:
            raise ConnectionFailed(
                f"response body broke off: {exc}", method="GET", url=str(response.url)
            ) from exc


async def download(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    params: Params | None = None,
    to: str | os.PathLike[str],
) -> int:
    """Write a GET's body to ``to`` (through ``<to>.part``, renamed when complete)."""
    target = Path(to)
    partial = target.with_name(target.name + ".part")
    written = 0
    try:
        async with await anyio.open_file(partial, "wb") as out:
            async for chunk in stream(client, path, path_params=path_params, params=params):
                await out.write(chunk)
                written += len(chunk)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return written


def _form(
    fields: Sequence[tuple[str, Any]], file: tuple[str, FileInput, str | None]
) -> tuple[Any, bool]:
    """A builder for the multipart body, and whether it can be built again for a retry."""
    name, contents, filename = file
    replayable = isinstance(contents, (bytes, str, os.PathLike))
    if isinstance(contents, (str, os.PathLike)):
        filename = filename or Path(contents).name
    filename = filename or name

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        for key, value in fields:
            if value is None or value.__class__.__name__ == "UnsetType":
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                form.add_field(key, str(item))
        if isinstance(contents, (str, os.PathLike)):
            payload: Any = aiohttp.get_payload(open(contents, "rb"))  # noqa: SIM115
        else:
            payload = contents
        form.add_field(name, payload, filename=filename,
                       content_type="application/octet-stream")
        return form

    return build, replayable


async def upload(
    client: SentryClient,
    path: str,
    *,
    path_params: Mapping[str, str | int],
    fields: Sequence[tuple[str, Any]],
    file: tuple[str, FileInput, str | None],
    type: type[T],
) -> T:
    """POST a multipart form with one file and decode the JSON answer into ``type``.

    Contents given as bytes or a path are sent again on a retried 429; an async iterator
    can be read once, so its upload is attempted once.
    """
    build, replayable = _form(fields, file)
    started = time.perf_counter()
    async with _open(
        client, "POST", path, path_params=path_params, params=None, data=build,
        replayable=replayable,
    ) as response:
        payload = await response.read()
        answer = Response(
            method="POST",
            url=response.url,
            status=response.status,
            headers=response.headers,
            body=payload,
            rate_limit=parse_rate_limit(response.headers),
            elapsed=time.perf_counter() - started,
        )
    return client.decode(answer, type)
