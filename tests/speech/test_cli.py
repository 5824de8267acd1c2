"""``cosmo speech``: install-model (error paths and a local archive, no network) and check."""

from __future__ import annotations

import argparse
import io
import socket
import zipfile
from pathlib import Path

import pytest

from cosmo.speech import cli
from cosmo.speech.errors import InstallError, SpeechError
from cosmo.speech.models import install_model, model_url
from cosmo.speech.settings import SpeechSettings
from tests.speech.conftest import korean_model_dir, need_espeak


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cosmo")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["speech", *argv])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fake_model_zip(path: Path, top: str = "vosk-model-small-xx-0.1", *, model: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/README", "test")
        if model:
            zf.writestr(f"{top}/am/final.mdl", "x")
            zf.writestr(f"{top}/graph/phones.txt", "x")
    return path


def test_model_table() -> None:
    assert model_url("ko") == "https://alphacephei.com/vosk/models/vosk-model-small-ko-0.22.zip"
    assert model_url("en_US") == "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"
    with pytest.raises(InstallError) as info:
        model_url("xx")
    assert str(info.value).startswith("no small vosk model known for 'xx' (known: ca, cs, de, en, ")


def test_install_unreachable_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/vosk-model-small-ko-0.22.zip"
    status = cli.run(parse("install-model", "ko", "--url", url, "--models-dir", str(tmp_path)))
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"error: cannot download {url}: [Errno 111] Connection refused. "
                          "Is the internet reachable from here?")
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing left behind


def test_install_from_a_local_archive(tmp_path: Path) -> None:
    archive = fake_model_zip(tmp_path / "model.zip")
    out = io.StringIO()
    status = cli.run(parse("install-model", "xx", "--url", str(archive), "--models-dir", str(tmp_path / "m")),
                     out=out)
    installed = tmp_path / "m" / "vosk-model-small-xx-0.1"
    assert status == 0
    assert out.getvalue() == (f"installed: {installed}\nadd to the configuration:\n"
                              f"speech:\n  models:\n    xx: {installed}\n")
    with pytest.raises(InstallError) as info:
        install_model("xx", tmp_path / "m", url=str(archive))
    assert str(info.value) == f"{installed} exists already; remove it first to install again"


def test_install_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(InstallError) as info:
        install_model("xx", tmp_path / "m", url=str(fake_model_zip(tmp_path / "a.zip", model=False)))
    assert str(info.value) == "a.zip: the archive holds no vosk model (no am/final.mdl and graph/)"
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    with pytest.raises(InstallError) as info:
        install_model("xx", tmp_path / "m", url=str(tmp_path / "b.zip"))
    assert str(info.value).startswith("b.zip: not a zip file")
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as zf:
        zf.writestr("../evil/am/final.mdl", "x")
    with pytest.raises(InstallError) as info:
        install_model("xx", tmp_path / "m", url=str(tmp_path / "c.zip"))
    assert str(info.value) == "c.zip: unsafe path '../evil/am/final.mdl' in the archive"


def test_settings_from_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "cosmo.yaml"
    config.write_text("sip: {}\nspeech:\n  models:\n    ko: /models/ko\n  vad_aggressiveness: 3\n")
    settings = cli.load_settings(config)
    assert (settings.models, settings.vad_aggressiveness) == ({"ko": Path("/models/ko")}, 3)
    config.write_text("speech:\n  vad_aggressiveness: 7\n")
    with pytest.raises(SpeechError) as info:
        cli.load_settings(config)
    assert str(info.value) == f"{config}: speech.vad_aggressiveness: Input should be less than or equal to 3"


def test_check_recognises_a_spoken_sample_per_language(tmp_path: Path) -> None:
    need_espeak()
    config = tmp_path / "cosmo.yaml"
    config.write_text(f"speech:\n  models:\n    ko: {korean_model_dir()}\n")
    out = io.StringIO()
    status = cli.run(parse("--config", str(config), "check"), out=out)
    lines = out.getvalue().splitlines()
    assert status == 0, lines
    assert lines[0].startswith("loaded in ")
    assert lines[1].startswith("en: pocketsphinx bundled model ")
    assert "said 'operator', grammar ['technical support', 'account balance', 'operator'] → 'operator' in " \
        in lines[1]
    assert lines[2].startswith(f"ko: vosk model {korean_model_dir()} (grammar and free mode): said '네', "
                               "grammar ['네', '아니요'] → '네' in ")


def test_check_with_nothing_served(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    status = cli.run(parse("check"), SpeechSettings(english_fallback=False), out=out)
    assert status == 1
    assert out.getvalue().splitlines()[1] == (
        "no language is served: configure speech.models (cosmo speech install-model LANG)")
