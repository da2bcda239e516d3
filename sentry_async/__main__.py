"""``python -m sentry_async``: the same as the ``sentry-async`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
