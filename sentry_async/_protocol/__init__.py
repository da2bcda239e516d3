"""Sentry's protocol as pure code: Link cursors, rate-limit headers, error bodies, retries.

Nothing here does I/O, so all of it is tested without a network.
"""
