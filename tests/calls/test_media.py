"""Media end to end, verified by analysing the audio: real peers (pjsua2,
baresip, SIPp) against a running ``cosmo serve`` on 127.0.0.1.

* a caller hears the demo welcome prompt intact (cross-correlation with the file);
* RFC 4733 digits and A-law speech from the pcaps of Debian's sip-tester are
  decoded and counted, and in-band digits are heard when no telephone-event
  was negotiated;
* two phones on different codecs (µ-law, A-law) hear each other's tone
  through Cosmo's bridge, hold music reaches the held side and two-way audio
  returns after resume;
* a caller whose RTP stops is hung up with BYE and the call record says why.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio import (
    XcorrPeak,
    dominant_frequency,
    dtmf_tone,
    normalized_xcorr_peak,
    piecewise_xcorr,
    read_wav,
    rms_dbfs,
    ulaw_encode,
)
from tests.cosmo_server import REPO, CosmoProcess, cosmo_server
from tests.peers.baresip import Baresip
from tests.peers.pjphone import PjPhone
from tests.peers.sipp import PCAP_DIR, pcap_rtp_packets, run_sipp, write_rtp_pcap

pytestmark = [pytest.mark.peers]

NUMBER = "+15550101"  # a demo number without IVR: welcome prompt, then music on hold in the queue
WELCOME = REPO / "media" / "prompts" / "en" / "welcome.wav"
MOH = REPO / "media" / "moh" / "default.wav"


def read_cdrs(server: CosmoProcess) -> list[sqlite3.Row]:
    """Every row of ``cdrs`` in the server's SQLite database, oldest first."""
    connection = sqlite3.connect(server.data_dir / "cosmo.db")
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute("SELECT * FROM cdrs ORDER BY id").fetchall()
    finally:
        connection.close()


def extra_of(row: sqlite3.Row) -> dict[str, Any]:
    return json.loads(row["extra"])


async def wait_no_calls(server: CosmoProcess, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        _, body = await server.api("GET", "/api/calls")
        if not body["calls"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"calls still up after {timeout} s: {body}")


def assert_intact_and_in_order(pieces: list[XcorrPeak], *, step_s: float) -> None:
    """Every piece found (one may suffer a receiver's frame slip), each ``step_s`` after the one before."""
    strong = [piece.peak > 0.9 for piece in pieces]
    assert len(pieces) >= 4 and strong.count(False) <= 1 and min(p.peak for p in pieces) > 0.5, pieces
    steps = [later.lag_seconds - earlier.lag_seconds for earlier, later in itertools.pairwise(pieces)]
    assert all(abs(step - step_s) < 0.1 for step in steps), (steps, pieces)


def recording(path: Path) -> tuple[np.ndarray, int]:
    wav = read_wav(path)
    return wav.mono(), wav.rate


# ---- prompts --------------------------------------------------------------------


async def test_caller_hears_the_welcome_prompt(tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    async with cosmo_server(tmp_path) as server, PjPhone(name="caller", workdir=tmp_path / "pj") as phone:
        call = await phone.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        # Recording is attached before the answer, so nothing of the prompt is missed.
        await phone.record(heard, call=call)
        await phone.wait_call_state("CONFIRMED", timeout=10, call=call)
        welcome = read_wav(WELCOME)
        await asyncio.sleep(welcome.seconds + 1.5)
        await phone.hangup(call=call)
        await phone.wait_event("record_closed", timeout=5, call=call)
    samples, rate = recording(heard)
    match = normalized_xcorr_peak(welcome.mono(), samples, reference_rate=welcome.rate, received_rate=rate)
    # Unrelated audio scores about 0.01 here; the G.711 round trip of the prompt about 1.
    assert match.peak > 0.5 and match.peak > 20 * match.noise_floor, match
    assert 0.0 <= match.lag_seconds < 1.5, match
    # Each half second of the prompt arrived, in order.
    pieces = piecewise_xcorr(welcome.mono(), samples, pieces_rate=welcome.rate, within_rate=rate)
    assert_intact_and_in_order(pieces, step_s=0.5)


# ---- DTMF and speech from SIPp pcaps ---------------------------------------------


async def test_rfc4733_digits_and_alaw_speech_from_sipp_pcaps(tmp_path: Path) -> None:
    speech = pcap_rtp_packets(PCAP_DIR / "g711a.pcap")
    digits = [pcap_rtp_packets(PCAP_DIR / f"dtmf_2833_{name}.pcap") for name in ("1", "2", "3", "pound")]
    async with cosmo_server(tmp_path) as server:
        result = await run_sipp("uac_call_pcap", server.sip_target, service=NUMBER, calls=1, timeout=40)
        assert result.ok, result.describe()
        await wait_no_calls(server, timeout=10)
    (row,) = read_cdrs(server)  # the server has stopped: the CDR writer flushed
    extra = extra_of(row)
    assert extra["dtmf"] == "123#", extra
    caller = extra["media"]["caller"]
    assert caller["codec"] == "PCMA", caller
    # Every packet SIPp replayed arrived, and none was refused.
    sent = len(speech) + sum(len(packets) for packets in digits)
    assert caller["packets_in"] == sent, (caller, sent)
    assert caller["bad"] == {} and caller["unknown_payload_type"] == 0 and caller["wrong_source"] == 0, caller
    assert caller["dtmf_digits"] == 4, caller
    assert caller["lost"] == 0, caller


async def test_inband_digits_are_heard_without_telephone_event(tmp_path: Path) -> None:
    """A caller that offers PCMU alone presses keys as tones in its audio."""
    keys = "159#"
    silence = np.zeros(4000)  # 0.5 s
    gap = np.zeros(1200)  # 150 ms
    audio = np.concatenate([silence] + [part for key in keys for part in (dtmf_tone(key, 0.1, amplitude=0.4), gap)]
                           + [silence])
    encoded = ulaw_encode(audio)
    payloads = [encoded[i:i + 160] for i in range(0, len(encoded) - 159, 160)]
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    write_rtp_pcap(workdir / "dtmf_inband_pcmu.pcap", payloads, payload_type=0)
    async with cosmo_server(tmp_path) as server:
        result = await run_sipp("uac_inband_dtmf", server.sip_target, service=NUMBER, calls=1, timeout=30,
                                workdir=workdir)
        assert result.ok, result.describe()
        await wait_no_calls(server, timeout=10)
    (row,) = read_cdrs(server)
    extra = extra_of(row)
    assert extra["dtmf"] == keys, extra
    caller = extra["media"]["caller"]
    assert caller["packets_in"] == len(payloads) and caller["lost"] == 0, caller


# ---- bridged phones ------------------------------------------------------------


def agents_only(settings: dict[str, Any]) -> None:
    # Phones on 127.0.0.1 would otherwise match the demo trunk by source and
    # dial as a carrier; away from it they authenticate as agents.
    settings["trunks"][0]["inbound"]["sources"] = ["192.0.2.1/32"]
    # pjsip answers the topmost challenge it knows; baresip 1.0 gets MD5 alone.
    settings["sip"]["auth"]["algorithms"] = ["SHA-256", "MD5"]


def agent_baresip(server: CosmoProcess, tmp_path: Path, *, tone_hz: int, codecs: tuple[str, ...]) -> Baresip:
    return Baresip(
        name="agent-1002",
        aor=f"sip:1002@127.0.0.1:{server.sip_port}",
        password="secret1002",
        regint=300,
        codecs=codecs,
        tone_hz=tone_hz,
        answermode="auto",
        workdir=tmp_path / "baresip",
    )


def tone_of(path: Path, *, skip_s: float = 0.5) -> tuple[float, float]:
    """(dominant frequency, level in dBFS) of a recording, its first ``skip_s`` left out."""
    samples, rate = recording(path)
    body = samples[int(skip_s * rate):]
    return dominant_frequency(body, rate), rms_dbfs(body)


async def test_pcmu_and_pcma_phones_hear_each_others_tone(tmp_path: Path) -> None:
    """pjsua2 (agent 1001, µ-law only) calls baresip (agent 1002, A-law only)
    through Cosmo, which anchors the media and transcodes."""
    heard_by_pj = tmp_path / "pj-heard.wav"
    async with cosmo_server(tmp_path, agents_only) as server, \
            PjPhone(name="agent-1001", codecs=("PCMU",), workdir=tmp_path / "pj") as pj, \
            agent_baresip(server, tmp_path, tone_hz=1000, codecs=("PCMA",)) as bs:
        await server.wait_registered("1002")
        await pj.register("1001", "secret1001", f"sip:127.0.0.1:{server.sip_port}")
        call = await pj.call(f"sip:1002@127.0.0.1:{server.sip_port}")
        await pj.play_tone(440, call=call)
        await pj.wait_call_state("CONFIRMED", timeout=10, call=call)
        await bs.wait_established(timeout=10)
        await pj.record(heard_by_pj, call=call)
        await asyncio.sleep(3.0)
        # Cosmo's RTCP reports (RFC 3550: about every 5 s) reach the phone.
        report = await bs.wait_event("CALL_RTCP", timeout=20)
        await pj.hangup(call=call)
        await pj.wait_event("record_closed", timeout=5, call=call)
        await bs.wait_closed(timeout=10)
        heard_by_bs = bs.received_audio()
        pj_freq, pj_level = tone_of(heard_by_pj)
        bs_freq, bs_level = tone_of(heard_by_bs)
    assert abs(pj_freq - 1000) < 10 and pj_level > -40, (pj_freq, pj_level)
    assert abs(bs_freq - 440) < 10 and bs_level > -40, (bs_freq, bs_level)
    # baresip read our SR (our packet count) and our report block about its stream.
    stats = report["rtcp_stats"]
    assert stats["rx"]["sent"] > 0 and stats["tx"]["lost"] == 0, stats


async def test_hold_plays_music_to_the_other_side_and_resume_restores_audio(tmp_path: Path) -> None:
    """Agent 1002 holds (re-INVITE, a=sendonly) and resumes; agent 1001 hears
    the music on hold meanwhile, then both hear each other's tone again."""
    async with cosmo_server(tmp_path, agents_only) as server, \
            PjPhone(name="agent-1001", codecs=("PCMU",), workdir=tmp_path / "pj1") as caller, \
            PjPhone(name="agent-1002", codecs=("PCMA",), workdir=tmp_path / "pj2") as holder:
        registrar = f"sip:127.0.0.1:{server.sip_port}"
        await caller.register("1001", "secret1001", registrar)
        await holder.register("1002", "secret1002", registrar)
        call = await caller.call(f"sip:1002@127.0.0.1:{server.sip_port}")
        await caller.play_tone(440, call=call)
        incoming = (await holder.wait_incoming_call(timeout=10))["call"]
        await holder.play_tone(1000, call=incoming)
        await holder.answer(200, call=incoming)
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        await holder.wait_call_state("CONFIRMED", timeout=10, call=incoming)

        await holder.hold(call=incoming)
        await holder.wait_event("media_state", timeout=10, call=incoming, status="LOCAL_HOLD")
        await caller.record(tmp_path / "held.wav", call=call)
        await asyncio.sleep(4.0)
        await caller.stop_record(call=call)

        await holder.reinvite(unhold=True, call=incoming)
        await holder.wait_event("media_state", timeout=10, call=incoming, status="ACTIVE")
        await caller.record(tmp_path / "resumed-caller.wav", call=call)
        await holder.record(tmp_path / "resumed-holder.wav", call=incoming)
        await asyncio.sleep(3.0)
        await caller.stop_record(call=call)
        await holder.stop_record(call=incoming)
        await caller.hangup(call=call)
        await holder.wait_call_state("DISCONNECTED", timeout=10, call=incoming)

    held, rate = recording(tmp_path / "held.wav")
    moh = read_wav(MOH)
    # Each half second the caller heard is found in the music, one after the other.
    pieces = piecewise_xcorr(held[int(0.5 * rate):], moh.mono(), pieces_rate=rate, within_rate=moh.rate)
    assert_intact_and_in_order(pieces, step_s=0.5)
    caller_freq, caller_level = tone_of(tmp_path / "resumed-caller.wav")
    holder_freq, holder_level = tone_of(tmp_path / "resumed-holder.wav")
    assert abs(caller_freq - 1000) < 10 and caller_level > -40, (caller_freq, caller_level)
    assert abs(holder_freq - 440) < 10 and holder_level > -40, (holder_freq, holder_level)


# ---- dead calls ------------------------------------------------------------------

RTP_TIMEOUT_S = 2.0


def short_rtp_timeout(settings: dict[str, Any]) -> None:
    settings["rtp"]["timeout_s"] = RTP_TIMEOUT_S


async def test_caller_whose_rtp_stops_is_hung_up_with_bye(tmp_path: Path) -> None:
    async with cosmo_server(tmp_path, short_rtp_timeout) as server:
        result = await run_sipp("uac_rtp_stops", server.sip_target, service=NUMBER, calls=1, timeout=40)
        assert result.ok, result.describe()  # the scenario ends only on Cosmo's BYE
        await wait_no_calls(server, timeout=10)
    (row,) = read_cdrs(server)
    assert (row["end_reason"], row["hangup_by"]) == ("rtp-timeout", "system"), dict(row)
    assert extra_of(row)["dtmf"] == "1"  # the little RTP there was did arrive
