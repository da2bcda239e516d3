"""Generates ``sentry_async/api/`` from Sentry's OpenAPI spec (``python -m codegen``)."""
