"""Small vosk models and their installation (``cosmo speech install-model``).

The vosk project publishes models as zip files at
``https://alphacephei.com/vosk/models/<name>.zip``.  :data:`SMALL_MODELS` names
the small model (tens of MB, runtime graph, so grammar mode works) of each
language it has one for.  :func:`install_model` downloads one (or any zip
given by URL or path), unpacks it into the models directory and checks it is
a vosk model.  Nothing in Cosmo downloads a model by itself.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from cosmo.speech.errors import InstallError
from cosmo.speech.vosk_engine import is_vosk_model

__all__ = ["MODELS_URL", "SMALL_MODELS", "install_model", "model_url"]

log = logging.getLogger(__name__)

MODELS_URL = "https://alphacephei.com/vosk/models/"

SMALL_MODELS: dict[str, str] = {
    "ca": "vosk-model-small-ca-0.4",
    "cs": "vosk-model-small-cs-0.4-rhasspy",
    "de": "vosk-model-small-de-0.15",
    "en": "vosk-model-small-en-us-0.15",
    "en-in": "vosk-model-small-en-in-0.4",
    "en-us": "vosk-model-small-en-us-0.15",
    "es": "vosk-model-small-es-0.42",
    "fa": "vosk-model-small-fa-0.42",
    "fr": "vosk-model-small-fr-0.22",
    "hi": "vosk-model-small-hi-0.22",
    "it": "vosk-model-small-it-0.22",
    "ja": "vosk-model-small-ja-0.22",
    "ko": "vosk-model-small-ko-0.22",
    "nl": "vosk-model-small-nl-0.22",
    "pl": "vosk-model-small-pl-0.22",
    "pt": "vosk-model-small-pt-0.3",
    "ru": "vosk-model-small-ru-0.22",
    "sv": "vosk-model-small-sv-rhasspy-0.15",
    "tr": "vosk-model-small-tr-0.3",
    "uk": "vosk-model-small-uk-v3-small",
    "vi": "vosk-model-small-vn-0.4",
    "zh": "vosk-model-small-cn-0.22",
}
"""Language → name of the vosk project's small model for it."""

_CHUNK = 1 << 20


def model_url(language: str) -> str:
    """The download URL of ``language``'s small model; :class:`InstallError` when there is none."""
    key = language.lower().replace("_", "-")
    name = SMALL_MODELS.get(key) or SMALL_MODELS.get(key.split("-")[0])
    if name is None:
        known = ", ".join(sorted(SMALL_MODELS))
        raise InstallError(f"no small vosk model known for {language!r} (known: {known}); "
                           f"pass --url with the model's zip from {MODELS_URL}")
    return f"{MODELS_URL}{name}.zip"


def _fetch(url: str, target: Path, timeout_s: float) -> None:
    local = Path(url)
    if "://" not in url and local.is_file():
        shutil.copyfile(local, target)
        return
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, target.open("wb") as out:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise InstallError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InstallError(
            f"cannot download {url}: {reason}. Is the internet reachable from here? "
            f"Otherwise fetch the zip elsewhere and pass its path with --url, "
            f"or unzip it into the models directory yourself") from exc


def _unpack(archive: Path, models_dir: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
            for name in names:
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    raise InstallError(f"{archive.name}: unsafe path {name!r} in the archive")
            if len(tops) != 1:
                raise InstallError(f"{archive.name}: expected one top directory, found {sorted(tops)[:5]}")
            top = models_dir / tops.pop()
            if top.exists():
                raise InstallError(f"{top} exists already; remove it first to install again")
            zf.extractall(models_dir)
    except zipfile.BadZipFile as exc:
        raise InstallError(f"{archive.name}: not a zip file ({exc})") from exc
    if not is_vosk_model(top):
        shutil.rmtree(top, ignore_errors=True)
        raise InstallError(f"{archive.name}: the archive holds no vosk model (no am/final.mdl and graph/)")
    return top


def install_model(language: str, models_dir: Path, *, url: str | None = None, timeout_s: float = 30.0) -> Path:
    """Download and unpack the vosk model for ``language``; the model directory.

    ``url`` (an http(s) URL, ``file://`` URL or a local zip path) replaces the
    table's.  Raises :class:`InstallError` with what to do when the download
    or the archive fails.
    """
    source = url or model_url(language)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".download-") as scratch:
        archive = Path(scratch) / (PurePosixPath(source).name or "model.zip")
        log.info("downloading %s", source)
        _fetch(source, archive, timeout_s)
        return _unpack(archive, models_dir)
