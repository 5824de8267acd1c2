"""The RTP port pool: even RTP ports with RTCP on the next odd one (RFC 3550 §11).

Ports are handed out round-robin through the configured range so that a
port just released is not reused at once (late packets of the old call must
not reach the new one).  A port another program holds is skipped.
"""

from __future__ import annotations

import socket
from collections import deque

from .errors import RtpError


class PortsExhausted(RtpError):
    """No free even/odd pair is left in the range."""


class PortPool:
    """Even/odd port pairs from ``[port_min, port_max]``."""

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)
        if first + 1 > port_max:
            raise RtpError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()
        self.size = len(self._free)

    @property
    def in_use(self) -> int:
        """Pairs handed out."""
        return len(self._used)

    def acquire(self) -> int:
        """Take the next free even port (its pair is ``port + 1``)."""
        if not self._free:
            raise PortsExhausted(f"all {self.size} RTP port pairs are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a pair back; it goes to the end of the queue."""
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)

    def bind_pair(self, host: str) -> tuple[int, socket.socket, socket.socket]:
        """Acquire a pair and bind UDP sockets for RTP and RTCP on ``host``.

        Pairs that another program holds are skipped (and released again).
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(self.size):
            port = self.acquire()
            rtp = socket.socket(family, socket.SOCK_DGRAM)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                self.release(port)
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return port, rtp, rtcp
        raise PortsExhausted(f"no bindable RTP port pair on {host} in {self.size} tries")
