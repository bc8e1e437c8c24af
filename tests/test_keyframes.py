"""Keyframe extraction split into spans decoded side by side: the frames come out as
from one decoder, in order, none lost at the cuts; samples of copies at different
frame rates line up in time and in the motion they average."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES
from provenance.config import Settings
from provenance.keyframes import MotionRule, extract, probe, spans


def _clip(target: Path, gop: int) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=25:d=26", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "2",
                    "-pix_fmt", "yuv420p", str(target)], check=True, capture_output=True)
    return target


@pytest.fixture(scope="module")
def two_second_gops(tmp_path_factory) -> Path:
    return _clip(tmp_path_factory.mktemp("kf") / "gop2s.mp4", 50)


def test_long_videos_are_split_at_fixed_fractions():
    # Copies of one duration restart their sampling at the same instant.
    assert spans(26.0, Settings()) == [(0.0, 13.0), (13.0, None)]
    assert spans(19.0, Settings()) == [(0.0, None)]
    plan = spans(600.0, Settings())
    assert len(plan) == 7 and plan[-1][1] is None
    assert all(length == pytest.approx(600 / 7) for _, length in plan[:-1])


def test_split_decoding_gives_the_frames_one_decoder_gives(two_second_gops):
    settings = Settings()
    whole = [k.t for k in extract(two_second_gops, settings)]
    split = [k.t for k in extract(two_second_gops, settings, probe(two_second_gops).duration_s)]
    assert split == sorted(split) and len(set(split)) == len(split)
    assert abs(len(split) - len(whole)) <= 2
    assert split[0] == whole[0] and abs(split[-1] - whole[-1]) < 0.3
    # No hole at the cut: samples stay as close as one decoder's (every 0.25 s).
    assert max(np.diff(split)) <= max(np.diff(whole)) + 0.01 <= 0.3


@pytest.mark.parametrize("rate", [10, 12, 25, 30, 60])
def test_a_query_samples_frames_the_index_sampled(tmp_path, rate):
    """Copies at one frame rate are sampled in step: every frame a query takes is
    one the index took (at 10 fps, "every 0.125 s" and "every 0.25 s" taken from
    the clock would pick every second and every third frame)."""
    clip = tmp_path / f"r{rate}.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s=160x90:r={rate}:d=4", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(clip)], check=True, capture_output=True)
    # No scene cuts: only the uniform sampling is compared.
    settings = Settings(scene_threshold=1.0)
    info = probe(clip)
    index = [k.t for k in extract(clip, settings, info.duration_s, info.frame_rate)]
    query = [k.t for k in extract(clip, settings, info.duration_s, info.frame_rate, sparse=True)]
    assert len(query) >= 4 * 3  # about every 0.25 s
    assert set(query) <= set(index), sorted(set(query) - set(index))
    assert max(np.diff(index)) <= 0.2 and max(np.diff(query)) <= 0.34


def test_a_10_fps_copy_samples_the_motion_its_original_samples(tmp_path):
    """A sample averages a time span, not a count of frames: two frames of a
    10 fps copy against four of its 30 fps original. With one frame against
    four, basketball's samples differed by 5.8 grey levels on average."""
    original = SAMPLES / "basketball.mp4"
    copy = tmp_path / "ten-fps.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(original), "-vf",
                    "fps=10", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                    "-pix_fmt", "yuv420p", str(copy)], check=True, capture_output=True)
    settings = Settings(scene_threshold=1.0)

    def samples(path: Path, sparse: bool) -> dict[float, np.ndarray]:
        info = probe(path)
        return {k.t: k.pixels.astype(np.float32)
                for k in extract(path, settings, info.duration_s, info.frame_rate, sparse=sparse)}

    indexed, queried = samples(original, False), samples(copy, True)
    differences = [np.abs(indexed[near] - pixels).mean() for t, pixels in queried.items()
                   if abs((near := min(indexed, key=lambda s: abs(s - t))) - t) < 0.02]
    assert len(differences) >= 12
    assert np.mean(differences) < 4.0, np.mean(differences)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("clip", ["cuts", "spans"])
def test_frames_between_samples_leave_the_samples_ffmpeg_selects(tmp_path, two_second_gops,
                                                                 clip, sparse):
    """With the frames between them yielded too (a motion rule keeping all), a
    video's samples (uniform and at scene cuts, the query's rate or the
    index's) are the very frames ffmpeg's own select takes, in one span and in
    several, and all come in order."""
    if clip == "cuts":  # dark, then a bright negative: a cut even through the mix
        path = tmp_path / "cut.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=s=320x180:r=25:d=2.3,lutyuv=y=val/3", "-f", "lavfi", "-i",
                        "testsrc2=s=320x180:r=25:d=2.3,lutyuv=y=255-val/3", "-filter_complex",
                        "[0:v][1:v]concat=n=2:v=1[out]", "-map", "[out]", "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                       check=True, capture_output=True)
    else:
        path = two_second_gops
    settings = Settings()
    info = probe(path)
    assert len(spans(info.duration_s, settings)) == (2 if clip == "spans" else 1)
    selected = [(k.t, k.pixels.tobytes()) for k in
                extract(path, settings, info.duration_s, info.frame_rate, sparse)]
    if clip == "cuts":  # the cut at 2.3 s restarted the uniform sampling off its step
        steps = np.diff([t for t, _ in selected])
        assert steps.min() < np.median(steps) - 0.03, steps
    every = list(extract(path, settings, info.duration_s, info.frame_rate, sparse,
                         MotionRule(signature=np.ravel, min_bits=0)))
    assert [(k.t, k.pixels.tobytes()) for k in every if k.sampled] == selected
    times = [k.t for k in every]
    assert times == sorted(times) and len(every) >= 2 * len(selected)
