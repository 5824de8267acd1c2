"""Speech: voice activity detection, recognisers and text-to-speech for the IVR.

The room gets plain 8 kHz 16-bit PCM frames from the call layer and imports
nothing of ``sip/``, ``rtp/`` or ``calls/``.

* :mod:`cosmo.speech.service` — :class:`SpeechService`: engines per language, streams, TTS;
* :mod:`cosmo.speech.stream` — :class:`SpeechStream`: one call's frames → recognitions;
* :mod:`cosmo.speech.vad` — webrtcvad with smoothing (speech start and end);
* :mod:`cosmo.speech.recognizer` — the :class:`Engine` / :class:`Recognizer` protocols, phrase matching;
* :mod:`cosmo.speech.vosk_engine` — vosk models (grammar and free mode, 8 kHz direct);
* :mod:`cosmo.speech.sphinx_engine` — pocketsphinx, the English fallback (16 kHz, JSGF);
* :mod:`cosmo.speech.tts` — eSpeak NG to cached 8 kHz WAVs;
* :mod:`cosmo.speech.models` — the table of small vosk models and their installation;
* :mod:`cosmo.speech.cli` — ``cosmo speech install-model`` and ``cosmo speech check``;
* :mod:`cosmo.speech.settings` — :class:`SpeechSettings`, the ``speech:`` configuration;
* :mod:`cosmo.speech.errors` — :class:`SpeechError` and its kinds.
"""

from cosmo.speech.errors import InstallError, ModelError, SpeechError, SynthesisError
from cosmo.speech.recognizer import Engine, Recognition, Recognizer
from cosmo.speech.service import SpeechService
from cosmo.speech.settings import SpeechSettings, TtsSettings
from cosmo.speech.stream import SpeechStream
from cosmo.speech.tts import TextToSpeech

__all__ = [
    "Engine",
    "InstallError",
    "ModelError",
    "Recognition",
    "Recognizer",
    "SpeechError",
    "SpeechService",
    "SpeechSettings",
    "SpeechStream",
    "SynthesisError",
    "TextToSpeech",
    "TtsSettings",
]
