"""The agent softphone, ``cosmo phone``: pjsua2 for SIP and media, pyaudio for sound.

It registers as an agent (``sip:1001@cosmo.local``, digest credentials) and
lets the agent answer, hang up, hold and resume, send RFC 4733 DTMF and
place calls from a line-oriented console, or answers by itself
(``--auto-answer``).  pjsua2 and pyaudio come with the optional extra
``phone`` (``pip install '.[phone]'``); importing this package needs neither.

* :mod:`cosmo.phone.command` — options, the extra check, the main loop;
* :mod:`cosmo.phone.console` — keys in, event lines out (no pjsua2);
* :mod:`cosmo.phone.events` — the events the phone reports (no pjsua2);
* :mod:`cosmo.phone.options` — the typed options (no pjsua2);
* :mod:`cosmo.phone.softphone` — the pjsua2 endpoint, account and calls;
* :mod:`cosmo.phone.sound` — sound device, pyaudio bridge or null device;
* :mod:`cosmo.phone.pcm` — the PCM buffer between two audio clocks;
* :mod:`cosmo.phone.errors` — :class:`PhoneError` and the console's :class:`CommandError`.
"""

from cosmo.phone.command import add_parser, run

__all__ = ["add_parser", "run"]
