"""The e-mail channel: SMTP and IMAP intake, MIME parsing, cases and threading, classification
rules, auto-acknowledge, agents' replies out through an SMTP relay.

The service is :class:`cosmo.email.service.EmailService`; its settings are
:class:`cosmo.email.settings.EmailSettings` (the ``email:`` section).  This
package module imports nothing, so the settings schema can be imported by
:mod:`cosmo.config` without pulling in the service (which depends on the ACD).
See ``docs/EMAIL.md``.
"""
