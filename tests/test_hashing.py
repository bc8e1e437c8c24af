"""Which frames a video is hashed at: its samples, and, sampled at the index's
rate, the frames of fast motion between them."""
from __future__ import annotations

import subprocess

import cv2
import numpy as np

from conftest import SAMPLES
from provenance.config import Settings
from provenance.fetch import fetch
from provenance.hashing import MOTION_SHARE, hash_video, hasher_for
from provenance.keyframes import MotionRule, extract
from provenance.views import CENTRE_HASH_SIZE


def test_still_footage_is_hashed_at_its_samples_only(tmp_path):
    frame, still = tmp_path / "frame.png", tmp_path / "still.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "2", "-i",
                    str(SAMPLES / "his-girl-friday.mp4"), "-frames:v", "1", str(frame)],
                   check=True, capture_output=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "30",
                    "-t", "3", "-i", str(frame), "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", str(still)], check=True, capture_output=True)
    settings = Settings()
    hashed = hash_video(fetch(str(still), settings), settings, hasher_for("pdq"),
                        for_query=False)
    assert len(hashed.times) >= 20 and all(hashed.sampled)


def test_fast_footage_keeps_the_frames_far_from_the_last_kept():
    """Between samples the index keeps a frame exactly when its whole picture is
    MOTION_SHARE of the match radius or more from the last frame kept; a query,
    sampled sparsely, keeps its samples only."""
    settings = Settings()
    media = fetch(str(SAMPLES / "fast-conveyor.mp4"), settings)
    hasher = hasher_for("pdq")
    indexed = hash_video(media, settings, hasher, for_query=False)
    queried = hash_video(media, settings, hasher, sparse=True)
    assert all(queried.sampled) and set(queried.times) <= set(indexed.times)
    extra = [i for i, sampled in enumerate(indexed.sampled) if not sampled]
    assert len(extra) >= len(indexed.times) / 3

    whole = {}
    for k in extract(media.path, settings, indexed.info.duration_s, indexed.info.frame_rate,
                     motion=MotionRule(signature=np.ravel, min_bits=0)):
        small = cv2.resize(k.pixels, (CENTRE_HASH_SIZE,) * 2, interpolation=cv2.INTER_AREA)
        whole[k.t] = hasher.hash_many([small])[0]

    def bits(a: float, b: float) -> int:
        return int(np.bitwise_count(whole[a] ^ whole[b]).sum())

    least = MOTION_SHARE * settings.radius_for("pdq")
    kept = indexed.times
    assert all(bits(kept[i], kept[i - 1]) >= least for i in extra)
    left_out = sorted(set(whole) - set(kept))
    assert left_out
    assert all(bits(t, max(k for k in kept if k < t)) < least for t in left_out)
