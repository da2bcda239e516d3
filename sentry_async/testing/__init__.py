"""A fake Sentry API for tests, demos and benchmarks, shipped with the library.

It serves the endpoints ``sentry_async`` wraps over real HTTP on 127.0.0.1, with Sentry's
Link headers, cursors, rate-limit headers, error bodies and quirks, seeded deterministic
data a test can add to (``server.builder``), scriptable faults, and a record of every
request (``server.requests``). The pytest plugin adds the ``fake_sentry``,
``fake_sentry_factory`` and ``fake_sentry_now`` fixtures.
"""

from ._app import RateLimitPolicy
from ._background import BackgroundLoop
from ._builder import DataBuilder, IssueBuilder, OrganizationBuilder, ProjectBuilder
from ._data import SCALES, Dataset, SeedConfig
from ._factory import FakeSentryFactory, seed_config
from ._faults import FAULT_KINDS, Fault, FaultPlan
from ._recorder import FILTERED, RecordedRequest, RequestLog
from ._server import FakeSentry

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
