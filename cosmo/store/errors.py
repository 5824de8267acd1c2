"""Errors raised by :mod:`cosmo.store`."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised by :mod:`cosmo.store`."""


class StoreNotStarted(StoreError):
    """A session was asked of a :class:`~cosmo.store.db.Database` before ``start()`` or after ``close()``."""


class MigrationError(StoreError):
    """The schema could not be brought to the current revision."""


class UnsupportedAlgorithm(StoreError):
    """A digest algorithm for which no HA1 is stored (RFC 8760 names MD5 and SHA-256)."""


class WriterClosed(StoreError):
    """A row was added to a :class:`~cosmo.store.batch.BatchWriter` after ``close()``."""
