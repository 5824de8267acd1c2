"""What the agent softphone is told on its command line, as typed values (no pjsua2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = ["PhoneOptions", "SoundMode", "Transport"]


class Transport(StrEnum):
    """SIP transport to the server."""

    UDP = "udp"
    TCP = "tcp"


class SoundMode(StrEnum):
    """How the phone picks its audio path (``--audio``)."""

    AUTO = "auto"  # pjsua's own device if it has one, else pyaudio's, else none
    PJSUA = "pjsua"  # pjsua2's own sound device layer
    PYAUDIO = "pyaudio"  # PortAudio through pyaudio, bridged into pjsua2
    NULL = "null"  # no sound device: the null device clocks the bridge


@dataclass(frozen=True, slots=True)
class PhoneOptions:
    """How the phone registers and behaves; built from the command line."""

    extension: str
    password: str
    server_host: str
    server_port: int
    transport: Transport = Transport.UDP
    domain: str = "cosmo.local"
    auto_answer: bool = False
    play: Path | None = None
    record: Path | None = None
    audio: SoundMode = SoundMode.AUTO
    bind: str | None = None  # None: the local address that routes to the server
    expires: int = 300
    pjsip_log_level: int = 2

    @property
    def aor(self) -> str:
        """The agent's address of record, ``1001@cosmo.local``."""
        return f"{self.extension}@{self.domain}"

    def server_uri(self) -> str:
        """``sip:HOST:PORT`` of the registrar and outbound proxy, with the transport."""
        host = f"[{self.server_host}]" if ":" in self.server_host else self.server_host
        uri = f"sip:{host}:{self.server_port}"
        return uri if self.transport == Transport.UDP else f"{uri};transport={self.transport}"
