"""A fake Sentry API for tests, demos and benchmarks, shipped with the library.

It serves the endpoints ``sentry_async`` wraps over real HTTP on 127.0.0.1, with Sentry's
Link headers, cursors, rate-limit headers, error bodies and quirks, seeded deterministic
data, and scriptable faults. The pytest plugin adds the ``fake_sentry`` fixture.
"""

from ._app import RateLimitPolicy, RecordedRequest
from ._data import DEFAULT_PRIORITIES, SCALES, Dataset, SeedConfig
from ._faults import FAULT_KINDS, Fault, FaultPlan
from ._server import FakeSentry

__all__ = [
    "DEFAULT_PRIORITIES",
    "FAULT_KINDS",
    "SCALES",
    "Dataset",
    "FakeSentry",
    "Fault",
    "FaultPlan",
    "RateLimitPolicy",
    "RecordedRequest",
    "SeedConfig",
]
