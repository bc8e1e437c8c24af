"""Keypoints: the mirror taken from the descriptors is SIFT's own of the flipped
picture, and a match needs frames met at one pace (one fewer where a weak hash
match agrees)."""
from __future__ import annotations

import cv2
import numpy as np

from provenance.features import (CONTRAST_THRESHOLD, KEYPOINTS_PER_FRAME, FeaturePair,
                                 FeatureSampler, HashAlignment, find_feature_matches, _paced,
                                 _KeypointPool)
from provenance.keyframes import FRAME_SIZE

from conftest import SAMPLES


def _keyframe(name: str, index: int) -> np.ndarray:
    """A frame as the keyframe stage hands it over: grey, squashed to a square."""
    capture = cv2.VideoCapture(str(SAMPLES / name))
    for _ in range(index + 1):
        ok, frame = capture.read()
        assert ok
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)


def test_mirrored_descriptors_are_those_sift_computes_on_the_flipped_picture():
    sampler = FeatureSampler(10.0, 16 / 9)
    plain = sampler.describe(0.0, _keyframe("tears-of-steel.mp4", 40))
    mirrored = sampler.mirror(plain)
    flipped = cv2.flip(cv2.resize(_keyframe("tears-of-steel.mp4", 40), (sampler.width, FRAME_SIZE)), 1)
    # SIFT run on the flipped picture at the mirrored keypoints, their angles mirrored.
    sift = cv2.SIFT_create(nfeatures=KEYPOINTS_PER_FRAME,
                           contrastThreshold=CONTRAST_THRESHOLD)
    found, _ = sift.detectAndCompute(cv2.resize(_keyframe("tears-of-steel.mp4", 40),
                                                (sampler.width, FRAME_SIZE)), None)
    at_mirror = [cv2.KeyPoint(sampler.width - 1 - k.pt[0], k.pt[1], k.size, (180 - k.angle) % 360,
                              k.response, k.octave) for k in found]
    _, truth = sift.compute(flipped, at_mirror)
    assert len(truth) == len(mirrored.descriptors)
    gap = np.abs(truth - mirrored.descriptors.astype(np.float32)).mean()
    unpermuted = np.abs(truth - plain.descriptors.astype(np.float32)).mean()
    assert gap < 5 < 20 < unpermuted, (gap, unpermuted)
    assert np.allclose(mirrored.points[:, 0], sampler.width - 1 - plain.points[:, 0])


def test_frames_met_out_of_pace_are_not_a_match():
    """Footage that merely looks alike meets frames anywhere in the video; a copy
    meets them in order. Only pairs on one line of a known speed count."""
    in_order = [FeaturePair(q, 5.0 + q, 40, 1.0) for q in (0.0, 1.0, 2.0, 3.0, 4.0)]
    paced = _paced(7, in_order, mirrored=False)
    assert (len(paced.pairs), paced.speed, paced.offset_s) == (5, 1.0, 5.0)
    scattered = [FeaturePair(q, r, 40, 1.0) for q, r in ((0, 9.0), (1, 2.0), (2, 14.0),
                                                         (3, 0.5), (4, 7.5))]
    assert len(_paced(7, scattered, mirrored=False).pairs) < 4
    # Every query frame meeting one frame (a still) fits a slow line, not a pace.
    still = [FeaturePair(q, 0.0, 80, 1.0) for q in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)]
    assert _paced(7, still, mirrored=False).instants == 1


def test_a_copy_is_met_and_an_unrelated_clip_is_not():
    def described(name: str, frames: range) -> list:
        sampler = FeatureSampler(10.0, 16 / 9)
        return [sampler.describe(float(i) / 24, _keyframe(name, i)) for i in frames]

    stored = [(1, f) for f in described("tears-of-steel.mp4", range(0, 120, 12))]
    stored += [(2, f) for f in described("big-buck-bunny.mp4", range(0, 120, 12))]
    same = described("tears-of-steel.mp4", range(0, 120, 12))
    assert [m.video_id for m in find_feature_matches(same, [], stored)] == [1]
    assert find_feature_matches(same, [], stored, skip=[1]) == []
    other = described("basketball.mp4", range(0, 120, 12))
    assert find_feature_matches(other, [], stored) == []


def test_three_frames_are_a_match_only_where_a_weak_hash_match_puts_them():
    """Three frames met are one short of a match by keypoints alone; a frame-hash
    match too weak to list that puts the query at the same place in the same
    video, the same way round, makes up the fourth. Nowhere else."""
    def described(name: str, frames: range) -> list:
        sampler = FeatureSampler(10.0, 16 / 9)
        return [sampler.describe(float(i) / 24, _keyframe(name, i)) for i in frames]

    stored = [(1, f) for f in described("tears-of-steel.mp4", range(0, 120, 12))]
    stored += [(2, f) for f in described("big-buck-bunny.mp4", range(0, 120, 12))]
    # Query frames 0.5 s apart from 1.5 s into the stored video: offset 1.5 s.
    query = [FeatureSampler(10.0, 16 / 9).describe(float(i - 36) / 24, _keyframe(
        "tears-of-steel.mp4", i)) for i in (36, 48, 60)]
    assert find_feature_matches(query, [], stored) == []
    agreeing = HashAlignment(speed=1.0, offset_s=1.5, mirrored=False, query_segment=(0.0, 1.25))
    found = find_feature_matches(query, [], stored, hash_alignments={1: agreeing})
    assert [(m.video_id, m.corroborated, m.score) for m in found] == [(1, True, 0.4)]
    assert [(p.query_t, p.reference_t) for p in found[0].pairs] == [(0.0, 1.5), (0.5, 2.0),
                                                                   (1.0, 2.5)]
    elsewhere = HashAlignment(speed=1.0, offset_s=4.0, mirrored=False, query_segment=(0.0, 1.25))
    mirrored = HashAlignment(speed=1.0, offset_s=1.5, mirrored=True, query_segment=(0.0, 1.25))
    for alignment in (elsewhere, mirrored):
        assert find_feature_matches(query, [], stored, hash_alignments={1: alignment}) == []
    assert find_feature_matches(query, [], stored, hash_alignments={2: agreeing}) == []


def test_the_same_check_pairs_the_same_keypoints_whatever_ran_before_it():
    """FLANN's trees are drawn at random: a clip checked in a batch (the feeds'
    watch, the benchmark) must meet the same neighbours as when checked alone."""
    def described(name: str, every: int, cropped: bool = False) -> list:
        sampler, capture, found = FeatureSampler(10.0, 16 / 9), cv2.VideoCapture(
            str(SAMPLES / name)), []
        ok, frame = capture.read()
        while ok:
            if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) % every == 1:
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if cropped:  # the lower left, as an off-centre crop keeps it
                    grey = grey[int(grey.shape[0] * 0.3):, :int(grey.shape[1] * 0.6)]
                found.append(sampler.describe(len(found) / 4, cv2.resize(
                    grey, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)))
            ok, frame = capture.read()
        return [f for f in found if f is not None]

    stored = [(video_id, f) for video_id, name in enumerate(
        ("tears-of-steel.mp4", "big-buck-bunny.mp4", "basketball.mp4", "his-girl-friday.mp4"))
        for f in described(name, 6)]
    query = described("tears-of-steel.mp4", 24, cropped=True)
    pairings = set()
    for _ in range(3):
        cv2.randu(np.zeros(16), 0, 1)  # OpenCV's generator moved on, as by earlier work
        pool = _KeypointPool(stored, set())
        pairings.add(tuple(tuple(sorted(pool.distinctive(q))) for q in query))
    assert len(pairings) == 1


def test_each_grid_time_takes_the_keyframe_nearest_it():
    """Keyframes of 12.5 fps video 0.16 s apart: each second takes the nearest,
    so an index (every 0.16 s) and a query (every 0.32 s) meet at most 0.16 s apart."""
    def chosen(spacing: float, sampler: FeatureSampler, duration: float = 30.0) -> list[float]:
        times = [round(i * spacing, 2) for i in range(int(duration / spacing) + 1)]
        return [t for x in times for t, _ in sampler.offer(x, None)] + \
            [t for t, _ in sampler.flush()]

    index = chosen(0.16, FeatureSampler(30.0, 16 / 9))
    assert index[:5] == [0.0, 0.96, 1.92, 3.04, 4.0]
    assert len(index) == 31 and all(abs(t - round(t)) <= 0.081 for t in index)
    query = chosen(0.32, FeatureSampler(30.0, 16 / 9, max_frames=40))
    assert len(query) == 31
    assert max(min(abs(q - i) for i in index) for q in query) <= 0.161
    # A longer query is described at most 40 times, whole seconds apart (3 s for
    # 100 s), near instants the index describes.
    long_query = chosen(0.32, FeatureSampler(100.0, 16 / 9, max_frames=40), 100.0)
    assert len(long_query) == 34
    assert all(abs(t - 3 * round(t / 3)) <= 0.161 for t in long_query)
    # A short query is described at every keyframe it samples (0.25 s), one under
    # 20 s at every other: each described instant of the footage is met by a frame
    # near it, whatever the copy's speed or start.
    assert len(chosen(0.25, FeatureSampler(6.0, 16 / 9, max_frames=40), 6.0)) == 25
    assert len(chosen(0.25, FeatureSampler(15.0, 16 / 9, max_frames=40), 15.0)) == 31
