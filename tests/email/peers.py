"""Real mail peers for the e-mail tests: an SMTP sink (aiosmtpd) and a throwaway Dovecot.

The sink runs on the test's own event loop on 127.0.0.1 (port 0, or a port
given, to bring a "relay" back up); it keeps every message with its
envelope.  Dovecot runs as a child process with a configuration of its own
(no system service is touched): IMAP only, on a free loopback port, one
passwd-file user, mail in a temporary directory; it is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import email
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers.common import free_port, kill_pid

__all__ = ["DOVECOT", "Dovecot", "SinkMessage", "SmtpSink"]

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass(frozen=True)
class SinkMessage:
    """A message the sink took: the envelope and the parsed message."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    message: EmailMessage = field(repr=False)

    def __getitem__(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return "" if body is None else str(body.get_content())


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.sink.messages.append(SinkMessage(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw, parsed))
        self.sink.arrived.set()
        return "250 2.0.0 OK"


class SmtpSink:
    """An SMTP server that keeps what it is sent.  ``start``/``stop`` on the running loop."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.messages: list[SinkMessage] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []

    def _session(self) -> SMTP:
        session = SMTP(_SinkHandler(self), hostname="sink.test")
        self._sessions.append(session)
        return session

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()
            self._sessions.clear()
            await asyncio.wait_for(server.wait_closed(), 5)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[SinkMessage]:
        """Until at least ``count`` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"sink: {len(self.messages)} of {count} messages after {timeout} s")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass
        return list(self.messages)


class Dovecot:
    """A Dovecot IMAP server of its own for one test; see the module documentation.

    Its files live in a new directory under the system's temporary directory
    (not the test's, which only root may enter): Dovecot's own processes run
    as its ``dovecot`` user and, for the mail, ``nobody``.  ``stop`` deletes it.
    """

    user = "support"
    password = "imap-secret"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cosmo-dovecot-"))
        os.chmod(self.root, 0o755)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return os.access(DOVECOT, os.X_OK)

    def _mail_owner(self) -> tuple[str, str]:
        if os.geteuid() == 0:
            # Dovecot refuses to run mail processes as root.
            return "nobody", "nogroup"
        entry = pwd.getpwuid(os.geteuid())
        import grp

        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name

    def start(self) -> Dovecot:
        mail, run, state = self.root / "mail", self.root / "run", self.root / "state"
        for directory in (mail, run, state):
            directory.mkdir(exist_ok=True)
        user, group = self._mail_owner()
        if os.geteuid() == 0:
            uid = pwd.getpwnam(user).pw_uid
            import grp

            gid = grp.getgrnam(group).gr_gid
            os.chown(mail, uid, gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        self.port = free_port("tcp")
        extra = "" if os.geteuid() == 0 else (
            f"default_internal_user = {user}\ndefault_login_user = {user}\n"
        )
        (self.root / "dovecot.conf").write_text(f"""\
base_dir = {run}
state_dir = {state}
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{mail}/%u
{extra}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not listen within 10 s")

    def stop(self) -> None:
        """Stop the server by its PID and delete its directory (idempotent)."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                kill_pid(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    kill_pid(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def deliver(self, *messages: bytes, mailbox: str = "INBOX") -> list[int]:
        """Put messages in the mailbox (IMAP APPEND, RFC 3501 §6.3.11); their UIDs (RFC 4315 APPENDUID)."""
        import imaplib
        import re

        uids = []
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            for raw in messages:
                status, data = client.append(mailbox, None, None, raw)
                assert status == "OK", data
                match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                uids.append(int(match.group(1)) if match else 0)
        finally:
            client.logout()
        return uids

    def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        """Each message's UID and flags."""
        import imaplib
        import re

        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            client.select(mailbox)
            _, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
            out = {}
            for line in data:
                uid = re.search(rb"UID (\d+)", line) if isinstance(line, bytes) else None
                flags = re.search(rb"FLAGS \(([^)]*)\)", line) if isinstance(line, bytes) else None
                if uid and flags:
                    out[int(uid.group(1))] = flags.group(1).decode()
            return out
        finally:
            client.logout()

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""
