"""``cosmo phone``'s options, checked without starting pjsua2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cosmo.cli import build_parser
from cosmo.phone.command import add_arguments, options_from
from cosmo.phone.errors import PhoneError
from cosmo.phone.options import PhoneOptions, SoundMode, Transport


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--ext", "1001", "--password", "secret1001", *argv])


def test_defaults_register_with_the_demo() -> None:
    options = options_from(parse())
    assert options == PhoneOptions(extension="1001", password="secret1001", server_host="127.0.0.1",
                                   server_port=5060, transport=Transport.UDP, domain="cosmo.local",
                                   audio=SoundMode.AUTO, pjsip_log_level=2)
    assert options.aor == "1001@cosmo.local"
    assert options.server_uri() == "sip:127.0.0.1:5060"


def test_every_option(tmp_path: Path) -> None:
    tone = tmp_path / "tone.wav"
    tone.write_bytes(b"RIFF")
    options = options_from(parse("--server", "pbx.example.com:5070", "--transport", "tcp", "--domain", "example.com",
                                 "--auto-answer", "--play", str(tone), "--record", str(tmp_path / "rec.wav"),
                                 "--audio", "null", "--bind", "192.0.2.7", "--expires", "120", "-vv"))
    assert options == PhoneOptions(
        extension="1001", password="secret1001", server_host="pbx.example.com", server_port=5070,
        transport=Transport.TCP, domain="example.com", auto_answer=True, play=tone.resolve(),
        record=(tmp_path / "rec.wav").resolve(), audio=SoundMode.NULL, bind="192.0.2.7", expires=120,
        pjsip_log_level=5,
    )
    assert options.server_uri() == "sip:pbx.example.com:5070;transport=tcp"


def test_an_ipv6_server() -> None:
    options = options_from(parse("--server", "[::1]:5062"))
    assert (options.server_host, options.server_port) == ("::1", 5062)
    assert options.server_uri() == "sip:[::1]:5062"
    assert options_from(parse("--server", "[::1]")).server_port == 5060


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "127.0.0.1:50x"], "--server '127.0.0.1:50x': expected HOST or HOST:PORT"),
        (["--server", "127.0.0.1:70000"], "--server '127.0.0.1:70000': port out of range"),
        (["--server", "127.0.0.1:0"], "--server '127.0.0.1:0': port out of range"),
        (["--play", "/nonexistent/tone.wav"], "--play /nonexistent/tone.wav: no such file"),
        (["--record", "/nonexistent/dir/rec.wav"], "--record /nonexistent/dir/rec.wav: no such directory /nonexistent/dir"),
        (["--expires", "30"], "--expires must be at least 60 seconds"),
    ],
)
def test_bad_options_say_what_is_wrong(argv: list[str], message: str) -> None:
    with pytest.raises(PhoneError) as caught:
        options_from(parse(*argv))
    assert str(caught.value) == message


def test_a_bad_extension() -> None:
    args = parse()
    args.ext = "10 01"
    with pytest.raises(PhoneError, match=r"^--ext '10 01': not an extension$"):
        options_from(args)


def test_cosmo_phone_is_a_subcommand_of_cosmo() -> None:
    args = build_parser().parse_args(["phone", "--ext", "1002", "--password", "secret1002", "--auto-answer"])
    assert args.command == "phone"
    assert options_from(args).extension == "1002"
    assert args.auto_answer
