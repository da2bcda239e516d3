"""``python -m sentry_async``: the same as the ``sentry-async`` command."""

from .cli import run

if __name__ == "__main__":
    run()
