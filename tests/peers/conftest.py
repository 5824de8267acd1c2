"""Pytest wiring for the peer drivers: the ``peers`` marker."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "peers: drives real SIP peers (SIPp, baresip, pjsua2) as child processes on 127.0.0.1",
    )
