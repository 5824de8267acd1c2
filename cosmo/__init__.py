"""Cosmo: an all-software contact-center server (SIP trunks, IVR, ACD, e-mail, CTI)."""

__version__ = "0.1.0"
