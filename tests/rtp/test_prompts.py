"""Tests of :mod:`cosmo.rtp.prompts`: frames, the cache, playlists.

G.711 is supplied by the stdlib ``audioop`` (deprecated, still present in
3.11), since the prompt cache takes its encoders from the caller.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from cosmo.rtp.prompts import Playlist, PlaylistCursor, PromptCache, PromptNotFound
from cosmo.rtp.wav import WavError, write_wav

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

MEDIA = Path(__file__).resolve().parents[2] / "media"


def ulaw(samples: np.ndarray) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return audioop.lin2ulaw(samples.astype("<i2").tobytes(), 2)


def alaw(samples: np.ndarray) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return audioop.lin2alaw(samples.astype("<i2").tobytes(), 2)


ENCODERS = {"PCMU": ulaw, "PCMA": alaw}


def ramp(n: int, start: int = 1000) -> np.ndarray:
    """Non-silent samples, different per position."""
    return (start + np.arange(n) * 7 % 20000).astype(np.int16)


def add_prompt(media: Path, name: str, samples: np.ndarray, rate: int = 8000, language: str = "en") -> Path:
    path = media / "prompts" / language / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, samples, rate)
    return path


@pytest.fixture
def media(tmp_path: Path) -> Path:
    add_prompt(tmp_path, "three", ramp(400))  # 2.5 frames
    add_prompt(tmp_path, "two", ramp(320, start=-5000))  # exactly 2 frames
    add_prompt(tmp_path, "empty", np.zeros(0, dtype=np.int16))
    return tmp_path


@pytest.fixture
def cache(media: Path) -> PromptCache:
    return PromptCache(media, ENCODERS)


# --------------------------------------------------------------------- frames


def test_frames_are_20ms_payloads_with_the_last_padded_by_silence(cache: PromptCache) -> None:
    frames = cache.frames("three", "PCMU")
    assert len(frames) == 3
    assert all(len(f) == 160 for f in frames)
    whole = ulaw(ramp(400))
    assert b"".join(frames)[:400] == whole
    assert frames[2][80:] == b"\xff" * 80  # µ-law silence
    assert cache.silence_frame("PCMU") == b"\xff" * 160
    assert cache.silence_frame("PCMA") == b"\xd5" * 160
    assert cache.frames("three", "PCMA")[2][80:] == b"\xd5" * 80


def test_whole_frames_get_no_padding_and_empty_files_no_frames(cache: PromptCache) -> None:
    two = cache.frames("two", "PCMU")
    assert b"".join(two) == ulaw(ramp(320, start=-5000))
    assert cache.frames("empty", "PCMU") == ()


def test_other_rates_are_resampled_to_8k_once(media: Path, cache: PromptCache) -> None:
    t = np.arange(16000) / 16000
    add_prompt(media, "wide", np.rint(np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), rate=16000)
    pcm = cache.samples("wide")
    assert len(pcm) == 8000
    assert not pcm.flags.writeable
    assert len(cache.frames("wide", "PCMU")) == 50
    assert cache.samples("wide") is pcm


def test_frames_size_follows_frame_samples(media: Path) -> None:
    cache = PromptCache(media, ENCODERS, frame_samples=240)
    frames = cache.frames("three", "PCMU")
    assert [len(f) for f in frames] == [240, 240]


def test_cached_frames_are_the_same_object_by_name_or_path(media: Path, cache: PromptCache) -> None:
    first = cache.frames("three", "PCMU")
    assert cache.frames("three", "PCMU") is first
    assert cache.frames("prompts/en/three.wav", "PCMU") is first
    assert cache.frames(media / "prompts" / "en" / "three.wav", "PCMU") is first
    assert cache.frames(str(media / "prompts" / "en" / "three.wav"), "PCMU") is first
    assert cache.frames("three", "PCMA") is not first


def test_a_relative_media_dir(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(media.parent)
    cache = PromptCache(media.name, ENCODERS)
    assert cache.resolve("three") == Path(media.name, "prompts", "en", "three.wav")
    assert len(cache.frames("three", "PCMU")) == 3
    assert len(cache.frames("prompts/en/two.wav", "PCMA")) == 2


def test_a_file_changed_on_disk_is_reloaded(media: Path, cache: PromptCache) -> None:
    first = cache.frames("two", "PCMU")
    path = add_prompt(media, "two", ramp(480))
    os.utime(path, ns=(1, 1))  # a different stamp even on coarse clocks
    second = cache.frames("two", "PCMU")
    assert second is not first
    assert len(second) == 3


def test_languages(media: Path, cache: PromptCache) -> None:
    add_prompt(media, "three", ramp(160), language="fr")
    assert len(cache.frames("three", "PCMU", language="fr")) == 1
    assert len(cache.frames("three", "PCMU")) == 3
    assert cache.resolve("welcome", "pt-BR") == media / "prompts" / "pt-BR" / "welcome.wav"


# --------------------------------------------------------------------- LRU


def test_lru_evicts_least_recently_used_by_bytes(media: Path) -> None:
    for name in ("a", "b", "c", "d"):
        add_prompt(media, name, ramp(1600))  # 3200 bytes of samples + 1600 of µ-law frames
    cache = PromptCache(media, ENCODERS, max_bytes=10_000)
    a = cache.frames("a", "PCMU")
    b = cache.frames("b", "PCMU")
    assert cache.cached_bytes == 9600
    c = cache.frames("c", "PCMU")  # a's samples, then a's frames, make room
    assert cache.cached_bytes == 9600
    assert cache.frames("b", "PCMU") is b  # kept, and now the most recent
    a_again = cache.frames("a", "PCMU")  # reloaded; the samples of b and c make room
    assert a_again is not a and a_again == a
    assert cache.frames("b", "PCMU") is b
    assert cache.frames("c", "PCMU") is c
    assert cache.cached_bytes == 8000  # frames of a, b, c and the samples of a
    cache.frames("d", "PCMU")  # a's samples are the oldest entry
    assert cache.cached_bytes == 9600
    assert cache.frames("a", "PCMU") is a_again


def test_an_entry_larger_than_the_cache_is_served_but_not_kept(media: Path) -> None:
    cache = PromptCache(media, ENCODERS, max_bytes=500)
    frames = cache.frames("three", "PCMU")  # 800 bytes of samples, 480 of frames
    assert len(frames) == 3
    assert cache.cached_bytes == 480
    assert cache.frames("three", "PCMU") is frames
    cache.clear()
    assert cache.cached_bytes == 0


def test_preload(media: Path, cache: PromptCache) -> None:
    cache.preload(["three", "two"], ["PCMU", "PCMA"])
    assert cache.cached_bytes == 800 + 640 + 2 * (480 + 320)


# --------------------------------------------------------------------- errors


def test_missing_prompt_names_the_path_tried(media: Path, cache: PromptCache) -> None:
    with pytest.raises(PromptNotFound) as caught:
        cache.frames("nope", "PCMU")
    assert str(caught.value) == f"prompt not found: {media / 'prompts' / 'en' / 'nope.wav'}"
    with pytest.raises(PromptNotFound) as caught:
        cache.frames("/no/such/file.wav", "PCMU")
    assert str(caught.value) == "prompt not found: /no/such/file.wav"
    assert isinstance(caught.value, WavError)


@pytest.mark.parametrize(
    ("name", "language", "message"),
    [
        ("..", "en", "invalid prompt name '..' (letters, digits, '-' and '_' only)"),
        ("wel come", "en", "invalid prompt name 'wel come' (letters, digits, '-' and '_' only)"),
        ("", "en", "invalid prompt name '' (letters, digits, '-' and '_' only)"),
        ("welcome", "../x", "invalid prompt language '../x'"),
    ],
)
def test_invalid_names(cache: PromptCache, name: str, language: str, message: str) -> None:
    with pytest.raises(PromptNotFound) as caught:
        cache.frames(name, "PCMU", language=language)
    assert str(caught.value) == message


def test_unreadable_prompt_is_a_wav_error(media: Path, cache: PromptCache) -> None:
    bad = media / "prompts" / "en" / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(WavError) as caught:
        cache.frames("bad", "PCMU")
    assert str(caught.value) == f"{bad}: not a WAV file (no RIFF/WAVE header)"


def test_codec_errors(media: Path, cache: PromptCache) -> None:
    with pytest.raises(ValueError, match="^no encoder for codec 'G729'$"):
        cache.frames("three", "G729")
    fixed = PromptCache(media, {"FIXED": lambda s: bytes(100), "NONE": lambda s: b""})
    with pytest.raises(ValueError, match="^codec 'FIXED' encoded 480 samples as 100 bytes, not 3 frames of 100 bytes$"):
        fixed.frames("three", "FIXED")
    with pytest.raises(ValueError, match="^codec 'NONE' encoded 160 samples as no bytes$"):
        fixed.frames("three", "NONE")


# --------------------------------------------------------------------- playlists


def test_playlist_plays_through_and_ends(cache: PromptCache) -> None:
    three = cache.frames("three", "PCMU")
    two = cache.frames("two", "PCMU")
    cursor = PlaylistCursor(cache, Playlist(("three", "empty", "two")), "PCMU")
    assert cursor.playlist.items == ("three", "empty", "two")
    assert cursor.position == (0, 0)
    got = []
    positions = []
    while (frame := cursor.next_frame()) is not None:
        got.append(frame)
        positions.append(cursor.position)
    assert got == [*three, *two]
    assert all(a is b for a, b in zip(got, [*three, *two], strict=True))  # no copies
    assert positions == [(0, 1), (0, 2), (2, 0), (2, 1), (3, 0)]
    assert cursor.finished
    assert cursor.frames_sent == 5
    assert cursor.next_frame() is None
    assert cursor.loops == 0


def test_looping_playlist_starts_again(cache: PromptCache) -> None:
    two = cache.frames("two", "PCMU")
    cursor = PlaylistCursor(cache, Playlist(("empty", "two"), loop=True), "PCMU")
    assert cursor.position == (1, 0)
    got = [cursor.next_frame() for _ in range(7)]
    assert got == [two[0], two[1]] * 3 + [two[0]]
    assert cursor.loops == 3
    assert cursor.position == (1, 1)
    assert not cursor.finished


def test_looping_over_nothing_ends_instead_of_spinning(cache: PromptCache) -> None:
    for playlist in (Playlist(("empty", "empty"), loop=True), Playlist((), loop=True)):
        cursor = PlaylistCursor(cache, playlist, "PCMU")
        assert cursor.finished
        assert cursor.next_frame() is None


def test_cursor_fails_at_once_on_a_missing_prompt(cache: PromptCache) -> None:
    with pytest.raises(PromptNotFound):
        PlaylistCursor(cache, Playlist(("three", "missing")), "PCMU")


# --------------------------------------------------------------------- the shipped media


def test_shipped_prompts_and_hold_music_load() -> None:
    cache = PromptCache(MEDIA, ENCODERS)
    welcome = cache.frames("welcome", "PCMU")
    assert 1 < len(welcome) * 0.02 < 10
    moh = cache.frames("moh/default.wav", "PCMU")
    assert len(moh) == 1500  # 30 s exactly, so it loops on a frame boundary
    beep = cache.frames("beep", "PCMA")
    assert len(beep) == 13  # 250 ms
