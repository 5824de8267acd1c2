"""Real SIP peers for end-to-end tests, each in a child process on 127.0.0.1.

* :class:`tests.peers.pjphone.PjPhone`: pjsua2 phone (register, call,
  answer, hold, DTMF, play and record audio).
* :class:`tests.peers.baresip.Baresip`: baresip user agent driven through
  its ctrl_tcp interface.
* :func:`tests.peers.sipp.run_sipp` and :func:`tests.peers.sipp.start_sipp_uas`:
  SIPp scenarios from ``tests/sipp``.
"""
