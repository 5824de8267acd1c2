"""Self-check of the peer drivers, peer to peer, without Cosmo.

SIPp scenarios run against their SIPp counterparts; the pjsua2 phone calls
baresip and another pjsua2 phone directly by URI; the audio helpers are
checked against signals of known content.  Everything binds 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import audio
from tests.peers.baresip import Baresip
from tests.peers.common import PeerError
from tests.peers.pjphone import PjPhone
from tests.peers.sipp import PCAP_DIR, pcap_rtp_packets, run_sipp, start_sipp_uas

pytestmark = pytest.mark.peers

# Upper bound of every test in seconds; each stays well below it.
TEST_BUDGET = 30.0

needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed")
needs_baresip = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed")
needs_pjsua2 = pytest.mark.skipif(
    importlib.util.find_spec("pjsua2") is None, reason=f"pjsua2 not installed for {sys.executable}"
)
needs_pcaps = pytest.mark.skipif(not (PCAP_DIR / "g711a.pcap").exists(), reason="SIPp pcap files not installed")


# -- SIPp against SIPp -------------------------------------------------------


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_uac_call_against_sipp_uas() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        uas = await start_sipp_uas("uas", calls=20, timeout=25)
        result = await run_sipp("uac_call", uas.address, calls=20, rate=40, service="+15550100", timeout=20)
        assert result.ok, result.describe()
        assert (result.successful, result.failed) == (20, 0), result.describe()
        served = await uas.wait(10)
        assert (served.successful, served.failed) == (20, 0), served.describe()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_uac_call_over_tcp() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        uas = await start_sipp_uas("uas", calls=5, transport="t1", timeout=25)
        result = await run_sipp(
            "uac_call", uas.address, calls=5, rate=20, transport="t1", service="+15550100", timeout=20
        )
        assert (result.successful, result.failed) == (5, 0), result.describe()
        served = await uas.wait(10)
        assert (served.successful, served.failed) == (5, 0), served.describe()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_uac_cancel_against_ringing_uas() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        uas = await start_sipp_uas("uas_ringing", calls=5, timeout=25)
        result = await run_sipp("uac_cancel", uas.address, calls=5, rate=20, service="+15550100", timeout=20)
        assert (result.successful, result.failed) == (5, 0), result.describe()
        served = await uas.wait(10)
        assert (served.successful, served.failed) == (5, 0), served.describe()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_caller_sees_server_hangup() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        uas = await start_sipp_uas("uas_hangup", calls=5, extra_args=["-d", "300"], timeout=25)
        result = await run_sipp(
            "uac_call_server_hangup", uas.address, calls=5, rate=20, service="+15550100", timeout=20
        )
        assert (result.successful, result.failed) == (5, 0), result.describe()
        served = await uas.wait(10)
        assert (served.successful, served.failed) == (5, 0), served.describe()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_register_digest_and_bad_password() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        registrar = await start_sipp_uas(
            "uas_registrar", calls=2, extra_args=["-key", "user", "1001", "-key", "password", "secret1001"], timeout=25
        )
        good = await run_sipp("register_digest", registrar.address, service="1001", auth=("1001", "secret1001"))
        assert (good.successful, good.failed) == (1, 0), good.describe()
        bad = await run_sipp("register_bad_password", registrar.address, service="1001", auth=("1001", "secret-wrong"))
        assert (bad.successful, bad.failed) == (1, 0), bad.describe()
        served = await registrar.wait(10)
        assert (served.successful, served.failed) == (2, 0), served.describe()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_register_digest_fails_on_wrong_password() -> None:
    # register_digest.xml must notice a refusal: the stand-in registrar
    # answers 403 to the wrong password, which the scenario does not expect.
    async with asyncio.timeout(TEST_BUDGET):
        registrar = await start_sipp_uas(
            "uas_registrar", calls=1, extra_args=["-key", "user", "1001", "-key", "password", "secret1001"], timeout=25
        )
        result = await run_sipp("register_digest", registrar.address, service="1001", auth=("1001", "secret-wrong"))
        assert result.returncode == 1 and result.failed == 1, result.describe()
        assert "403 Forbidden" in result.errors
        await registrar.stop()


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_options() -> None:
    async with asyncio.timeout(TEST_BUDGET):
        server = await start_sipp_uas("uas_options", calls=3, timeout=25)
        result = await run_sipp("options", server.address, calls=3, rate=20)
        assert (result.successful, result.failed) == (3, 0), result.describe()
        await server.wait(10)


@needs_sipp
@pytest.mark.asyncio
async def test_sipp_reports_unreachable_target() -> None:
    # Nothing answers on the discard port: the call fails and SIPp still
    # ends by itself within its -timeout.
    async with asyncio.timeout(TEST_BUDGET):
        result = await run_sipp("options", "127.0.0.1:9", calls=1, timeout=3, extra_args=["-recv_timeout", "1000"])
        assert not result.ok
        assert result.successful == 0, result.describe()


# -- pjsua2 and baresip ------------------------------------------------------


@needs_pjsua2
@needs_baresip
@pytest.mark.asyncio
async def test_pjphone_calls_baresip_and_both_hear_the_other_tone(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        async with (
            PjPhone(name="alice", workdir=tmp_path / "alice") as alice,
            Baresip(name="bob", tone_hz=1000, workdir=tmp_path / "bob") as bob,
        ):
            call = await alice.call(bob.uri())
            incoming = await bob.wait_incoming_call()
            assert incoming["peeruri"].startswith("sip:alice@127.0.0.1")
            await alice.play_tone(440, call=call)
            await alice.record(tmp_path / "alice-heard.wav", call=call)
            await bob.answer()
            await bob.wait_established()
            await alice.wait_call_state("CONFIRMED", call=call)
            await alice.wait_event("media_state", status="ACTIVE", call=call)
            # Media needs time to flow: 1.5 s of each tone.
            await asyncio.sleep(1.5)
            await alice.hangup(call=call)
            closed = await bob.wait_closed()
            assert closed["id"] == incoming["id"]
            ended = await alice.wait_call_state("DISCONNECTED", call=call)
            assert ended["code"] == 200
            await alice.wait_event("record_closed", call=call)
            bob_heard = bob.received_audio()

        heard = audio.read_wav(tmp_path / "alice-heard.wav")
        assert heard.seconds > 1.0
        assert abs(audio.dominant_frequency(heard.samples, heard.rate) - 1000) < 5
        assert audio.band_energy_ratio(heard.samples, heard.rate, 1000) > 0.9
        assert audio.rms_dbfs(heard.samples) > -30

        wav = audio.read_wav(bob_heard)
        assert wav.seconds > 1.0
        assert abs(audio.dominant_frequency(wav.samples, wav.rate) - 440) < 5
        assert audio.band_energy_ratio(wav.samples, wav.rate, 440) > 0.9


@needs_pjsua2
@needs_baresip
@pytest.mark.asyncio
async def test_baresip_calls_pjphone_and_hangs_up(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        async with (
            PjPhone(name="carol", workdir=tmp_path / "carol") as carol,
            Baresip(name="dave", workdir=tmp_path / "dave") as dave,
        ):
            await dave.dial(carol.uri())
            incoming = await carol.wait_incoming_call()
            assert "baresip" in incoming["msg"]
            await carol.answer(180, call=incoming["call"])
            await dave.wait_event("CALL_RINGING")
            await carol.answer(200, call=incoming["call"])
            await dave.wait_established()
            await carol.wait_call_state("CONFIRMED", call=incoming["call"])
            await dave.send_dtmf("5")
            dtmf = await carol.wait_event("dtmf", call=incoming["call"])
            assert (dtmf["digit"], dtmf["method"]) == ("5", "rfc2833")
            await dave.hangup()
            ended = await carol.wait_call_state("DISCONNECTED", call=incoming["call"])
            assert ended["code"] == 200
            await dave.wait_closed()


@needs_pjsua2
@pytest.mark.asyncio
async def test_pjphones_dtmf_hold_and_codec_choice(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        async with (
            PjPhone(name="erin", codecs=("PCMA",), workdir=tmp_path / "erin") as erin,
            PjPhone(name="frank", workdir=tmp_path / "frank") as frank,
        ):
            call = await erin.call(frank.uri())
            incoming = await frank.wait_incoming_call()
            offer = re.search(r"^m=audio \d+ RTP/AVP ([0-9 ]+)\r?$", incoming["msg"], re.MULTILINE)
            assert offer is not None and offer.group(1).split()[0] == "8", incoming["msg"]
            assert "0" not in offer.group(1).split()
            await frank.answer(200, call=incoming["call"])
            await erin.wait_call_state("CONFIRMED", call=call)
            await frank.wait_call_state("CONFIRMED", call=incoming["call"])

            await erin.dial_dtmf("12#", "rfc2833", call=call)
            assert await frank.wait_dtmf(3) == "12#"
            await erin.dial_dtmf("*9", "info", call=call)
            first = await frank.wait_event("dtmf", call=incoming["call"])
            second = await frank.wait_event("dtmf", call=incoming["call"])
            assert [(e["digit"], e["method"]) for e in (first, second)] == [("*", "info"), ("9", "info")]

            await erin.hold(call=call)
            await erin.wait_event("media_state", status="LOCAL_HOLD", call=call)
            await frank.wait_event("media_state", status="REMOTE_HOLD", call=incoming["call"])
            await erin.reinvite(unhold=True, call=call)
            await frank.wait_event("media_state", status="ACTIVE", call=incoming["call"])

            await frank.hangup(call=incoming["call"])
            assert (await erin.wait_call_state("DISCONNECTED", call=call))["code"] == 200


@needs_pjsua2
@pytest.mark.asyncio
async def test_pjphone_rejects_and_reports_code(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        async with (
            PjPhone(name="gina", workdir=tmp_path / "gina") as gina,
            PjPhone(name="hank", workdir=tmp_path / "hank") as hank,
        ):
            call = await gina.call(hank.uri())
            incoming = await hank.wait_incoming_call()
            await hank.answer(486, call=incoming["call"])
            ended = await gina.wait_call_state("DISCONNECTED", call=call)
            assert ended["code"] == 486
            with pytest.raises(PeerError, match="no active call"):
                await gina.hangup()


@needs_pjsua2
@pytest.mark.asyncio
async def test_pjphone_plays_wav_that_the_other_phone_records(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    prompt = np.concatenate([audio.tone(300, 0.2), 0.3 * rng.standard_normal(4000), audio.tone(700, 0.3)])
    audio.write_wav(tmp_path / "prompt.wav", prompt, 8000)
    async with asyncio.timeout(TEST_BUDGET):
        async with (
            PjPhone(name="lena", workdir=tmp_path / "lena") as lena,
            PjPhone(name="mark", workdir=tmp_path / "mark") as mark,
        ):
            call = await lena.call(mark.uri())
            incoming = await mark.wait_incoming_call()
            await mark.record(tmp_path / "mark-heard.wav", call=incoming["call"])
            await mark.answer(200, call=incoming["call"])
            await lena.wait_event("media_state", status="ACTIVE", call=call)
            await lena.play_wav(tmp_path / "prompt.wav", loop=False, call=call)
            await lena.wait_event("play_done", timeout=5, call=call)
            # The last frames are still in the receiver's jitter buffer.
            await asyncio.sleep(0.5)
            assert await mark.stop_record(call=incoming["call"]) == [str(tmp_path / "mark-heard.wav")]
            await lena.hangup(call=call)
            await mark.wait_call_state("DISCONNECTED", call=incoming["call"])
    heard = audio.read_wav(tmp_path / "mark-heard.wav")
    match = audio.normalized_xcorr_peak(prompt, heard.samples, reference_rate=8000, received_rate=heard.rate)
    assert match.peak > 0.95, match
    assert 0 <= match.lag_seconds < 0.5, match


@needs_pjsua2
@needs_baresip
@needs_sipp
@pytest.mark.asyncio
async def test_peers_over_tcp(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        registrar = await start_sipp_uas(
            "uas_registrar",
            calls=1,
            transport="t1",
            extra_args=["-key", "user", "1003", "-key", "password", "secret1003"],
            timeout=25,
        )
        async with (
            PjPhone(name="nina", workdir=tmp_path / "nina") as nina,
            Baresip(name="otto", workdir=tmp_path / "otto") as otto,
        ):
            registered = await nina.register("1003", "secret1003", f"sip:{registrar.address}", transport="tcp")
            assert registered is not None and registered["code"] == 200
            call = await nina.call(otto.uri("tcp"), account="local")
            incoming = await otto.wait_incoming_call()
            await otto.answer()
            await otto.wait_established(call_id=incoming["id"])
            confirmed = await nina.wait_call_state("CONFIRMED", call=call)
            assert confirmed["remote_contact"].endswith(";transport=tcp>")
            await otto.hangup()
            await nina.wait_call_state("DISCONNECTED", call=call)
        # The phone unregisters as it closes (after a 401 round trip).
        served = await registrar.wait(10)
        assert (served.successful, served.failed) == (1, 0), served.describe()


@needs_pjsua2
@needs_baresip
@needs_sipp
@pytest.mark.asyncio
async def test_peers_register_with_digest_at_stand_in_registrar(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        registrar = await start_sipp_uas(
            "uas_registrar", calls=3, extra_args=["-key", "user", "1002", "-key", "password", "secret1002"], timeout=25
        )
        registrar_uri = f"sip:{registrar.address}"
        async with PjPhone(name="ivy", workdir=tmp_path / "ivy") as ivy:
            registered = await ivy.register("1002", "secret1002", registrar_uri, expires=60)
            assert registered is not None and registered["code"] == 200
            unregistered = await ivy.unregister()
            assert unregistered is not None and unregistered["code"] == 200
            with pytest.raises(PeerError, match="403"):
                await ivy.register("1002", "not-the-password", registrar_uri, expires=60)
        async with Baresip(
            name="jay", aor=f"sip:1002@{registrar.address}", password="secret1002", regint=60, workdir=tmp_path / "jay"
        ) as jay:
            ok = await jay.wait_registered()
            assert ok["accountaor"] == f"sip:1002@{registrar.address}"
        # baresip unregisters as it quits; that ends the third registration.
        served = await registrar.wait(10)
        assert served.successful == 3 and served.failed == 0, served.describe()


@needs_pjsua2
@needs_sipp
@needs_pcaps
@pytest.mark.asyncio
async def test_sipp_pcap_call_reaches_pjphone_with_speech_and_digits(tmp_path: Path) -> None:
    async with asyncio.timeout(TEST_BUDGET):
        async with PjPhone(name="kim", codecs=("PCMA",), workdir=tmp_path / "kim") as kim:
            sipp_run = asyncio.create_task(
                run_sipp("uac_call_pcap", f"127.0.0.1:{kim.udp_port}", service="kim", timeout=20)
            )
            incoming = await kim.wait_incoming_call()
            await kim.record(tmp_path / "kim-heard.wav", call=incoming["call"])
            await kim.answer(200, call=incoming["call"])
            assert await kim.wait_dtmf(4, timeout=15, call=incoming["call"]) == "123#"
            await kim.wait_call_state("DISCONNECTED", timeout=5, call=incoming["call"])
            await kim.wait_event("record_closed", call=incoming["call"])
            result = await sipp_run
            assert (result.successful, result.failed) == (1, 0), result.describe()

    speech = [p.payload for p in pcap_rtp_packets(PCAP_DIR / "g711a.pcap") if p.payload_type == 8]
    reference = audio.alaw_decode(np.frombuffer(b"".join(speech), dtype=np.uint8))
    heard = audio.read_wav(tmp_path / "kim-heard.wav")
    match = audio.normalized_xcorr_peak(reference, heard.samples, reference_rate=8000, received_rate=heard.rate)
    # The phone's jitter buffer may drop or stretch a frame on a loaded machine (seen: 0.79);
    # the margin over the noise floor is what tells the speech arrived.
    assert match.peak > 0.6, match
    assert match.peak > 10 * match.noise_floor, match


# -- audio helpers -----------------------------------------------------------


def test_audio_tone_analysis_and_wav_round_trip(tmp_path: Path) -> None:
    path = audio.write_tone_wav(tmp_path / "tone.wav", 440, 0.5, rate=16000)
    wav = audio.read_wav(path)
    assert (wav.rate, wav.channels, len(wav.samples)) == (16000, 1, 8000)
    assert abs(audio.dominant_frequency(wav.samples, wav.rate) - 440) < 1
    assert abs(audio.rms_dbfs(wav.samples) - (20 * np.log10(0.5 / np.sqrt(2)))) < 0.2
    assert audio.rms_dbfs(np.zeros(100)) == audio.SILENCE_DBFS


def test_audio_xcorr_finds_a_resampled_copy() -> None:
    rng = np.random.default_rng(7)
    reference = 0.2 * rng.standard_normal(4000)
    delay = 0.3
    received = np.concatenate(
        [
            0.01 * rng.standard_normal(int(16000 * delay)),
            0.5 * audio.resample(reference, 8000, 16000),
            0.01 * rng.standard_normal(8000),
        ]
    )
    found = audio.normalized_xcorr_peak(reference, received, reference_rate=8000, received_rate=16000)
    assert found.peak > 0.95
    assert abs(found.lag_seconds - delay) < 0.001
    other = audio.normalized_xcorr_peak(rng.standard_normal(4000), received, reference_rate=8000, received_rate=16000)
    assert other.peak < 0.2


def test_audio_dtmf_digits() -> None:
    gap = np.zeros(400)
    signal = np.concatenate([np.concatenate([audio.dtmf_tone(key, 0.08), gap]) for key in "159#*0"])
    assert audio.dtmf_digits(signal, 8000) == "159#*0"
    assert audio.dtmf_digits(audio.tone(1000, 0.5), 8000) == ""


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_audio_reads_g711_wav_from_sox(tmp_path: Path) -> None:
    import subprocess

    source = audio.write_tone_wav(tmp_path / "src.wav", 800, 0.25, rate=8000)
    for encoding in ("u-law", "a-law"):
        out = tmp_path / f"{encoding}.wav"
        subprocess.run(["sox", str(source), "-e", encoding, str(out)], check=True, timeout=10)
        wav = audio.read_wav(out)
        assert wav.rate == 8000
        assert abs(audio.dominant_frequency(wav.samples, wav.rate) - 800) < 2
