"""Fixtures shared by every test package."""

from tests.postgres import postgres_url

__all__ = ["postgres_url"]
