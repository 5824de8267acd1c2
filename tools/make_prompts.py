#!/usr/bin/env python3
"""Generate Cosmo's voice prompts, tones and hold music into ``media/``.

    python tools/make_prompts.py [--out media] [--check]

Speech is synthesised by eSpeak NG and shaped by SoX; the beep and the hold
music are synthesised by SoX alone.  Every output is 8 kHz, mono, 16-bit PCM
WAV, the format the media engine plays without resampling.  The script also
writes ``<out>/README.md``, which lists every file with its text and the
commands that made it, from the same tables, so the two never disagree.

Generation is deterministic: fixed voice and options, SoX in repeatable mode
(``-R``) with dither off (``-D``), no timestamps in the files.  A re-run with
the same eSpeak NG and SoX versions gives byte-identical files; a file whose
bytes did not change is left untouched.  ``--check`` generates into a
temporary directory and reports which files would change (exit status 1 if
any), without writing.

Needs ``espeak-ng`` and ``sox`` on PATH (Debian: ``apt-get install espeak-ng
sox``).  Standard library only, so it runs before Cosmo is installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

RATE = 8000
LANGUAGE = "en"

# Speech: eSpeak NG's American English voice at a calm, clear pace.
ESPEAK_OPTIONS: tuple[str, ...] = ("-v", "en-us", "-s", "150", "-p", "50", "-a", "100")
# -R: repeatable mode (fixed seeds, no timestamps); -D: no dither, so silence
# stays digital zero and output depends only on the input samples.
SOX_GLOBAL: tuple[str, ...] = ("-R", "-D", "-V2")
SOX_OUT: tuple[str, ...] = ("-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer")
# Trim eSpeak's leading and trailing silence (below -50 dBFS for 10 ms), band-limit
# and resample with SoX's very-high-quality resampler, normalise to -3 dBFS peak,
# then a 50 ms lead-in so the first syllable is never clipped by a jitter buffer
# or a phone's audio path warming up.
SPEECH_EFFECTS: tuple[str, ...] = (
    "silence", "1", "0.01", "-50d",
    "reverse", "silence", "1", "0.01", "-50d", "reverse",
    "highpass", "120",
    "rate", "-v", str(RATE),
    "gain", "-n", "-3",
    "pad", "0.05", "0",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spoken:
    """A prompt spoken by eSpeak NG: its file name (without .wav) and text."""

    name: str
    text: str
    use: str


# Whole prompts for the demo IVR and the queue.
PROMPTS: tuple[Spoken, ...] = (
    Spoken("welcome", "Thank you for calling Cosmo. We are happy to help you today.", "greeting"),
    Spoken(
        "main-menu",
        "For billing, press 1 or say account balance. "
        "For technical support, press 2 or say technical support. "
        "To speak to an operator, press 0 or say operator.",
        "main menu",
    ),
    Spoken(
        "enter-account-number",
        "Please enter your six digit account number, followed by the pound key.",
        "collect digits",
    ),
    Spoken("invalid-entry", "Sorry, that is not a valid entry. Please try again.", "collect digits"),
    Spoken("no-input", "Sorry, we did not receive your entry. Please try again.", "collect digits"),
    Spoken("you-entered", "You entered", "read back, then say-as digits"),
    Spoken("press-1-if-correct", "Press 1 if this is correct.", "read back"),
    Spoken("call-may-be-recorded", "This call may be recorded for quality purposes.", "greeting"),
    Spoken("agents-busy", "All our agents are busy helping other callers.", "queue"),
    Spoken("please-hold", "Please hold. Your call is important to us.", "queue"),
    Spoken("you-are-caller-number", "You are caller number", "queue position, then say-as number"),
    Spoken("in-line", "in line.", "queue position, after the number"),
    Spoken("estimated-wait-time", "Your estimated wait time is", "queue, then say-as duration"),
    Spoken("less-than-a-minute", "less than a minute.", "say-as duration"),
    Spoken("transferring", "Transferring your call.", "transfer"),
    Spoken(
        "closed",
        "We are closed right now. Our hours are Monday to Friday, "
        "from nine in the morning until six in the evening. "
        "Please call again during those hours.",
        "out of hours",
    ),
    Spoken(
        "leave-message",
        "Please leave a message after the tone. Press pound when you are done.",
        "voicemail, then beep",
    ),
    Spoken("rate-call", "Please rate this call from 1 to 5, where 5 is the best.", "survey"),
    Spoken("goodbye", "Thank you. Goodbye.", "end of call"),
)

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# Single words that cosmo.rtp.sayas strings together; file name = the word.
FRAGMENTS: tuple[Spoken, ...] = (
    *(Spoken(word, word, "say-as number / digits") for word in _ONES + _TEENS + _TENS),
    *(Spoken(word, word, "say-as number") for word in ("hundred", "thousand", "million")),
    Spoken("star", "star", "say-as digits (*)"),
    Spoken("pound", "pound", "say-as digits (#)"),
    Spoken("and", "and", "say-as currency"),
    Spoken("point", "point", "say-as decimals"),
    *(Spoken(word, word, "say-as currency") for word in ("dollar", "dollars", "cent", "cents")),
    Spoken("about", "about", "say-as duration"),
    *(Spoken(word, word, "say-as duration") for word in ("second", "seconds", "minute", "minutes", "hour", "hours")),
)

BEEP_NAME = "beep"
BEEP_EFFECTS: tuple[str, ...] = (
    "synth", "0.25", "sine", "1000",
    "fade", "h", "0.005", "0.25", "0.005",  # no click at either end
    "gain", "-n", "-12",
)  # fmt: skip

# Hold music: a gentle I-vi-IV-V-I-iii-IV-V progression in C major, a sine-pad chord under
# a plucked arpeggio, 128 beats per minute, eight chords of eight beats = 30 s.
# Notes lie between 196 and 784 Hz, where a telephone earpiece is at
# its best.  The piece is rendered twice, reverberated, and the second copy
# kept: its start carries the reverb tail of its own end, so it loops without
# a seam.
MOH_NAME = "default"
BEAT_SAMPLES = 3750  # 0.46875 s at 8 kHz = 128 bpm
BEATS_PER_CHORD = 8
PLUCK_RATE = 48000
# (pad notes, arpeggio notes)
CHORDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("G3", "C4", "E4"), ("C4", "E4", "G4", "C5")),  # C
    (("A3", "C4", "E4"), ("A3", "C4", "E4", "A4")),  # Am
    (("A3", "C4", "F4"), ("F4", "A4", "C5", "F5")),  # F
    (("G3", "B3", "D4"), ("G4", "B4", "D5", "G5")),  # G
    (("G3", "C4", "E4"), ("E4", "G4", "C5", "E5")),  # C
    (("G3", "B3", "E4"), ("E4", "G4", "B4", "E5")),  # Em
    (("A3", "C4", "F4"), ("C4", "F4", "A4", "C5")),  # F
    (("G3", "B3", "D4"), ("D4", "G4", "B4", "D5")),  # G
)
ARPEGGIO = (0, 1, 2, 3, 2, 1, 2, 1)  # chord-tone index per beat
MOH_EFFECTS: tuple[str, ...] = ("lowpass", "2400", "reverb", "40", "50", "70")
MOH_PEAK_DBFS = "-8"

_NOTE_STEPS = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}


def note_hz(note: str) -> str:
    """Equal-tempered frequency of a note name such as ``"C4"`` (A4 = 440 Hz)."""
    semitones = _NOTE_STEPS[note[0]] + 12 * (int(note[1:]) - 4)
    return f"{440.0 * 2.0 ** (semitones / 12):.3f}"


class ToolError(Exception):
    """A missing tool or a failed command."""


def run(argv: Sequence[str]) -> None:
    """Run one command; raise ToolError with its output if it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    if proc.stderr.strip():
        # SoX reports clipping as a warning on stderr: worth seeing.
        print(f"  note: {argv[0]}: {proc.stderr.strip()}", file=sys.stderr)


def sox(*args: str) -> None:
    run(("sox", *SOX_GLOBAL, *args))


def make_spoken(prompt: Spoken, target: Path, work: Path) -> None:
    raw = work / f"{prompt.name}.espeak.wav"
    run(("espeak-ng", *ESPEAK_OPTIONS, "-w", str(raw), prompt.text))
    sox(str(raw), *SOX_OUT, str(target), *SPEECH_EFFECTS)


def make_beep(target: Path) -> None:
    sox("-r", str(RATE), "-n", *SOX_OUT, str(target), *BEEP_EFFECTS)


def make_hold_music(target: Path, work: Path) -> None:
    pads: list[str] = []
    notes: list[str] = []
    for c, (pad_notes, arp_notes) in enumerate(CHORDS):
        pad = work / f"pad{c}.wav"
        tones = [part for n in pad_notes for part in ("sine", note_hz(n))]
        # One channel per tone, mixed down to mono by SoX on output.
        run(
            ("sox", *SOX_GLOBAL, "-r", str(RATE), "-c", str(len(pad_notes)), "-n", *SOX_OUT,
             str(pad), "synth", f"{BEAT_SAMPLES * BEATS_PER_CHORD}s", *tones,
             "fade", "h", "0.3", f"{BEAT_SAMPLES * BEATS_PER_CHORD}s", "0.3")
        )  # fmt: skip
        pads.append(str(pad))
        for b, index in enumerate(ARPEGGIO):
            note = work / f"arp{c}-{b}.wav"
            # SoX plucks only at 44.1-48 kHz: synthesise at 48 kHz, exactly one beat.
            sox("-r", str(PLUCK_RATE), "-n", *SOX_OUT, str(note),
                "synth", f"{BEAT_SAMPLES * PLUCK_RATE // RATE}s", "pluck", note_hz(arp_notes[index]),
                "fade", "h", "0.004", f"{BEAT_SAMPLES * PLUCK_RATE // RATE}s", "0.08",
                "rate", "-v", str(RATE))  # fmt: skip
            notes.append(str(note))
    pad_track = work / "pad.wav"
    arp_track = work / "arp.wav"
    sox(*pads, str(pad_track))
    sox(*notes, str(arp_track))
    once = work / "once.wav"
    sox("-m", "-v", "0.4", str(pad_track), "-v", "0.55", str(arp_track), str(once))
    loop_samples = BEAT_SAMPLES * BEATS_PER_CHORD * len(CHORDS)
    twice = work / "twice.wav"
    sox(str(once), str(once), str(twice))
    shaped = work / "shaped.wav"
    sox(str(twice), str(shaped), *MOH_EFFECTS)
    sox(str(shaped), *SOX_OUT, str(target),
        "trim", f"{loop_samples}s", f"{loop_samples}s", "gain", "-n", MOH_PEAK_DBFS)  # fmt: skip


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def tool_version(name: str, argv: Sequence[str]) -> str:
    """``"<name> <version>"`` from a tool's version banner."""
    out = subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout
    found = re.search(r"\d+(?:\.\d+)+", out)
    return f"{name} {found.group(0) if found else '(unknown version)'}"


def readme(out: Path) -> str:
    """The README for ``out``, listing every generated file (which must exist)."""
    lang = out / "prompts" / LANGUAGE
    espeak = tool_version("eSpeak NG", ("espeak-ng", "--version"))
    soxv = tool_version("SoX", ("sox", "--version"))
    lines = [
        "# Media",
        "",
        "Voice prompts, tones and hold music that Cosmo plays, all 8 kHz mono",
        "16-bit PCM WAV (the telephone rate, so nothing is resampled at play time).",
        "Every file here is generated by `tools/make_prompts.py` (`make prompts`);",
        "this README too.  Edit the tables in that script, never the files.",
        "",
        "Prompts are named without `.wav`: an IVR flow or Cosmo's say-as says",
        f"`welcome`, and the media engine plays `prompts/{LANGUAGE}/welcome.wav`.",
        "Any other 8–48 kHz PCM (or G.711) WAV can be played by path too; it is",
        "converted to 8 kHz mono once, when first loaded.",
        "",
        "## How they were made",
        "",
        "Speech (each prompt and fragment: eSpeak NG speaks the text, SoX trims",
        "the silence at both ends, band-limits, resamples to 8 kHz, normalises to",
        "−3 dBFS peak and adds a 50 ms lead-in):",
        "",
        "```",
        f"espeak-ng {' '.join(ESPEAK_OPTIONS)} -w raw.wav TEXT",
        f"sox {' '.join(SOX_GLOBAL)} raw.wav {' '.join(SOX_OUT)} NAME.wav \\",
        f"    {' '.join(SPEECH_EFFECTS)}",
        "```",
        "",
        f"`{BEEP_NAME}` (a 1 kHz tone of 250 ms at −12 dBFS with 5 ms fades):",
        "",
        "```",
        f"sox {' '.join(SOX_GLOBAL)} -r {RATE} -n {' '.join(SOX_OUT)} {BEEP_NAME}.wav {' '.join(BEEP_EFFECTS)}",
        "```",
        "",
        f"`moh/{MOH_NAME}.wav` is synthesised by SoX, so there are no rights to",
        "clear: a C–Am–F–G–C–Em–F–G progression at 128 bpm, a sine-pad chord",
        "under a plucked arpeggio (notes from 196 to 784 Hz), low-passed at",
        f"2.4 kHz, with reverb, {MOH_PEAK_DBFS} dBFS peak.  It is rendered twice and",
        "the second copy kept: its start carries the reverb tail of its own end,",
        "so it loops without a seam.  The exact commands are in the script.",
        "",
        f"Made with {espeak} and {soxv}.  The same versions give byte-identical",
        "files; other versions may differ slightly in sound and bytes.",
        "",
        f"## Prompts (`prompts/{LANGUAGE}/`)",
        "",
        "| name | text | seconds | used for |",
        "| --- | --- | ---: | --- |",
    ]
    for p in PROMPTS:
        lines.append(f"| `{p.name}` | {p.text} | {wav_seconds(lang / f'{p.name}.wav'):.2f} | {p.use} |")
    lines.append(
        f"| `{BEEP_NAME}` | (1 kHz tone) | {wav_seconds(lang / f'{BEEP_NAME}.wav'):.2f} | before recording a message |"
    )
    lines += [
        "",
        f"## Say-as fragments (`prompts/{LANGUAGE}/`)",
        "",
        "Single words that `cosmo.rtp.sayas` strings together to say numbers,",
        'digits, amounts and durations ("one hundred twenty three",',
        '"twelve dollars and fifty cents", "about three minutes").',
        "Each file is named after its word.",
        "",
        "| name | seconds | used for |",
        "| --- | ---: | --- |",
    ]
    for p in FRAGMENTS:
        lines.append(f"| `{p.name}` | {wav_seconds(lang / f'{p.name}.wav'):.2f} | {p.use} |")
    lines += [
        "",
        "## Hold music (`moh/`)",
        "",
        "| file | seconds | what |",
        "| --- | ---: | --- |",
        (
            f"| `{MOH_NAME}.wav` | {wav_seconds(out / 'moh' / f'{MOH_NAME}.wav'):.2f} | "
            "synthesised, royalty-free; loops without a seam |"
        ),
        "",
    ]
    return "\n".join(lines)


def generate(out: Path, work: Path) -> list[Path]:
    """Write every file into ``out``; return their paths, README last."""
    lang = out / "prompts" / LANGUAGE
    lang.mkdir(parents=True, exist_ok=True)
    (out / "moh").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for prompt in PROMPTS + FRAGMENTS:
        target = lang / f"{prompt.name}.wav"
        make_spoken(prompt, target, work)
        written.append(target)
    beep = lang / f"{BEEP_NAME}.wav"
    make_beep(beep)
    written.append(beep)
    moh = out / "moh" / f"{MOH_NAME}.wav"
    make_hold_music(moh, work)
    written.append(moh)
    notes = out / "README.md"
    notes.write_text(readme(out), encoding="utf-8")
    written.append(notes)
    return written


def _shown(path: Path) -> Path:
    """``path`` relative to the current directory when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "media", help="media directory (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only report files that would change; exit 1 if any")
    args = parser.parse_args(argv)
    out: Path = args.out

    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        print(f"error: {', '.join(missing)} not found on PATH (Debian: apt-get install espeak-ng sox)",
              file=sys.stderr)  # fmt: skip
        return 2

    names = [p.name for p in PROMPTS + FRAGMENTS] + [BEEP_NAME]
    if len(set(names)) != len(names):
        print("error: duplicate prompt names in the tables", file=sys.stderr)
        return 2

    changed = 0
    with tempfile.TemporaryDirectory(prefix="cosmo-prompts-") as tmp:
        staging = Path(tmp) / "out"
        work = Path(tmp) / "work"
        work.mkdir()
        try:
            files = generate(staging, work)
        except ToolError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for staged in files:
            relative = staged.relative_to(staging)
            target = out / relative
            new = staged.read_bytes()
            if target.exists() and target.read_bytes() == new:
                state = "unchanged"
            else:
                changed += 1
                state = "differs" if args.check else "wrote"
                if not args.check:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(target.name + ".partial")
                    partial.write_bytes(new)
                    partial.replace(target)
            print(f"{state:9} {_shown(target)} ({len(new)} bytes)")

        expected = {out / staged.relative_to(staging) for staged in files}
        for kind in ("prompts/" + LANGUAGE, "moh"):
            for stray in sorted((out / kind).glob("*.wav")) if (out / kind).is_dir() else []:
                if stray not in expected:
                    print(f"stray     {_shown(stray)} (not generated by this script; left in place)")

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) if out.is_dir() else 0
    if args.check:
        print(f"{changed} file(s) would change")
        return 1 if changed else 0
    print(f"{changed} file(s) written, {len(files) - changed} unchanged; {_shown(out)} holds {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
