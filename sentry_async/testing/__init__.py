"""A fake Sentry API for tests, demos and benchmarks, shipped with the library.

It serves the endpoints ``sentry_async`` wraps over real HTTP on 127.0.0.1, with Sentry's
Link headers, cursors, rate-limit headers, error bodies and quirks, seeded deterministic
data a test can add to (``server.builder``), scriptable faults, and a record of every
request (``server.requests``). The pytest plugin adds the ``fake_sentry``,
``fake_sentry_factory`` and ``fake_sentry_now`` fixtures.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from ._app import RateLimitPolicy
    from ._background import BackgroundLoop
    from ._builder import DataBuilder, IssueBuilder, OrganizationBuilder, ProjectBuilder
    from ._data import SCALES, Dataset, SeedConfig
    from ._factory import FakeSentryFactory, seed_config
    from ._faults import FAULT_KINDS, Fault, FaultPlan
    from ._recorder import FILTERED, RecordedRequest, RequestLog
    from ._server import FakeSentry

# Imported on first use, so that the pytest plugin, which pytest loads in every session of
# an environment with sentry-async, costs nothing (aiohttp included) until a test asks for
# the fake.
_LAZY = {
    "RateLimitPolicy": "._app",
    "BackgroundLoop": "._background",
    "DataBuilder": "._builder",
    "IssueBuilder": "._builder",
    "OrganizationBuilder": "._builder",
    "ProjectBuilder": "._builder",
    "SCALES": "._data",
    "Dataset": "._data",
    "SeedConfig": "._data",
    "FakeSentryFactory": "._factory",
    "seed_config": "._factory",
    "FAULT_KINDS": "._faults",
    "Fault": "._faults",
    "FaultPlan": "._faults",
    "FILTERED": "._recorder",
    "RecordedRequest": "._recorder",
    "RequestLog": "._recorder",
    "FakeSentry": "._server",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sentry_async.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "FAULT_KINDS",
    "FILTERED",
    "SCALES",
    "BackgroundLoop",
    "DataBuilder",
    "Dataset",
    "FakeSentry",
    "FakeSentryFactory",
    "Fault",
    "FaultPlan",
    "IssueBuilder",
    "OrganizationBuilder",
    "ProjectBuilder",
    "RateLimitPolicy",
    "RecordedRequest",
    "RequestLog",
    "SeedConfig",
    "seed_config",
]
