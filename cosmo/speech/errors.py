"""Errors of the speech room: one base, one subclass per failing part."""

from __future__ import annotations

__all__ = ["InstallError", "ModelError", "SpeechError", "SynthesisError"]


class SpeechError(Exception):
    """Base of every error :mod:`cosmo.speech` raises."""


class ModelError(SpeechError):
    """A recognition model cannot be loaded (missing directory, bad files, engine not installed)."""


class SynthesisError(SpeechError):
    """Text-to-speech failed (engine missing, unknown voice, engine error)."""


class InstallError(SpeechError):
    """``cosmo speech install-model`` cannot fetch or unpack a model."""
