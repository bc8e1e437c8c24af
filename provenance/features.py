"""Local features: SIFT keypoints of about one frame a second, for the copies no
whole-picture hash survives.

PDQ hashes the picture as a whole and forgives about 1 % of shift: a copy cut to
60 % of its frame off the centre, or covered in stickers, meets none of the views
the index stores. Keypoints do not care where the picture was cut. A frame of the
query meets a frame of an indexed video when a similarity transform (scale,
turn, shift) carries MIN_INLIERS or more of its matched keypoints onto theirs;
a video is listed when MIN_FRAMES or more query frames meet its frames at
times that keep one pace (the speeds of match.SPEEDS), with MIN_TOTAL_INLIERS
among them; or one fewer, on the very alignment a weak match of the frame
hashes found (two measurements that agree: see find_feature_matches).
Lowe's ratio test runs against every stored frame: a keypoint repeated in
many frames (a static graphic, a studio backdrop, an office seen in clip
after clip) has a second neighbour as close as its first and counts for
nothing; one seen once in each of a few videos is in an original and its
reposts, and counts for each.

Frames are the keyframe stage's 256 x 256 grey pictures, stretched back to
their aspect ratio (a similarity must hold between query and reference), so
no second decoding is needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import cv2
import numpy as np

from .keyframes import FRAME_SIZE

# Bumped when what is stored changes; videos described under an older version
# (or none) are described again by `provenance rehash` (index.videos_to_rehash).
FEATURES_VERSION = 2
KEYPOINTS_PER_FRAME = 400
# Half OpenCV's default: a flat picture (fruit on a white table, flies on black)
# keeps enough keypoints to be met. On bench/accuracy this found 9 more copies
# and brought no look-alike nearer; a frame stores about a quarter more.
CONTRAST_THRESHOLD = 0.02
DESCRIPTOR_BYTES = 128
INTERVAL_S = 1.0
# The keyframes a query samples are 0.25 s apart (config: query_interval_s); the
# index's, 0.125 s. Steps are multiples of this, so that both have keyframes near
# the same instants.
GRID_S = 0.25
MIN_DESCRIBED = 8  # a short clip is described at least this often (the signers: 2-3 s)
MAX_QUERY_FRAMES = 40
MIN_KEYPOINTS = 8

RATIO = 0.75  # Lowe's ratio test
FLANN_SEED = 0  # the same check of the same index finds the same neighbours (see _KeypointPool)
TWINS = 5  # copies of one point in other videos that are no rival (see _KeypointPool)
RANSAC_PX = 4.0
CANDIDATE_FRAMES = 6  # indexed frames a query frame is verified against, most votes first
MIN_VOTES = 4
# Calibrated on bench/accuracy's negatives: a look-alike (another clip of the
# same signer in the same office) met at most 2 distinct frames of 15 inliers or
# more at one pace, 47 inliers in all; the copies found meet 4 to 31.
MIN_INLIERS = 15
MIN_FRAMES = 4
# A frame-hash match too weak to list that puts the query at the same alignment
# stands for one of MIN_FRAMES. On bench/accuracy's negatives the nearest wrong
# video was a look-alike met in 2 frames (56 inliers) on such an alignment; the
# two copies found this way (a TikTok re-edit, a news frame) met 3, with 124
# and 109 inliers.
CORROBORATING_FRAMES = 1
MIN_TOTAL_INLIERS = 100
FULL_SUPPORT_FRAMES = 10  # a match's score is its frames / this, at most 1
PACE_TOLERANCE_S = 0.6


@dataclass(frozen=True)
class FrameFeatures:
    """One frame's keypoints: positions on the upright picture (FRAME_SIZE
    pixels on its shorter side) and their SIFT descriptors, stored losslessly
    as bytes (OpenCV's SIFT values are whole numbers 0-255)."""

    t: float  # seconds since the video's first decoded frame
    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 128) uint8


def describing_step(duration_s: float | None, max_frames: int | None = None) -> float:
    """Seconds between described frames. Indexed (no ``max_frames``): INTERVAL_S,
    shorter for a clip under MIN_DESCRIBED of them (a multiple of GRID_S). A
    query: the densest of GRID_S, 2 GRID_S and whole multiples of INTERVAL_S that
    takes at most ``max_frames``; a short query then meets every described
    instant of the footage it shares from a frame near it, and a long one meets
    them exactly (a step of 0.75 s would fall between the index's seconds)."""
    if not duration_s:
        return INTERVAL_S
    if max_frames:
        for step in (GRID_S, 2 * GRID_S):
            if duration_s / step <= max_frames:
                return step
        return math.ceil(duration_s / max_frames / INTERVAL_S) * INTERVAL_S
    return max(GRID_S, math.floor(min(INTERVAL_S, duration_s / MIN_DESCRIBED) / GRID_S) * GRID_S)


def upright(pixels: np.ndarray, aspect: float | None) -> np.ndarray:
    """A squashed FRAME_SIZE-square keyframe stretched back to its aspect ratio."""
    if not aspect:
        return pixels
    side = pixels.shape[0]
    size = (round(side * aspect), side) if aspect >= 1 else (side, round(side / aspect))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)


class FeatureSampler:
    """Which keyframes to describe, and their description. Frames are taken on a
    grid of times, ``step`` apart from 0: about one a second (INTERVAL_S), at
    least MIN_DESCRIBED for a short clip, at most ``max_frames`` (a query; its
    grid then a multiple of the index's). Each grid time takes the keyframe
    nearest it: a copy and its original, sampled 0.25 and 0.125 s apart, are
    described at the same instants, as their hashes are."""

    def __init__(self, duration_s: float | None, aspect: float | None,
                 max_frames: int | None = None) -> None:
        self.step = describing_step(duration_s, max_frames)
        self.aspect = aspect
        self.max_frames = max_frames
        self.taken = 0
        self._nearest: tuple[int, float, float, np.ndarray] | None = None  # grid point, gap, t, pixels
        # The width of the pictures described (upright): where a mirrored keypoint lands.
        self.width = round(FRAME_SIZE * aspect) if aspect and aspect >= 1 else FRAME_SIZE
        self._sift = cv2.SIFT_create(nfeatures=KEYPOINTS_PER_FRAME,
                                     contrastThreshold=CONTRAST_THRESHOLD)

    def offer(self, t: float, pixels: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Take the keyframe at ``t`` (in time order); return the (t, pixels) now
        known to be nearest their grid time, to be described."""
        point = round(t / self.step)
        gap = abs(t - point * self.step)
        done = []
        if self._nearest is not None and self._nearest[0] != point:
            done = self.flush()
        if self._nearest is None or gap < self._nearest[1]:
            self._nearest = (point, gap, t, pixels)
        return done

    def flush(self) -> list[tuple[float, np.ndarray]]:
        """The frame held for the last grid time, once no frame follows."""
        held, self._nearest = self._nearest, None
        if held is None or (self.max_frames and self.taken >= self.max_frames):
            return []
        self.taken += 1
        return [(held[2], held[3])]

    def describe(self, t: float, pixels: np.ndarray) -> FrameFeatures | None:
        """The keypoints of a keyframe; None when it has too few (a flat picture)."""
        return self._describe(t, upright(pixels, self.aspect))

    def mirror(self, features: FrameFeatures) -> FrameFeatures:
        """The keypoints of a frame this sampler described, flipped left-right, without
        describing it again: SIFT's 4 x 4 cells of 8 orientations, measured from
        the keypoint's own orientation, mirror as their rows reversed and each
        angle negated (checked against SIFT run on the flipped picture: mean
        difference 3 of values averaging 27)."""
        points = features.points.copy()
        points[:, 0] = self.width - 1 - points[:, 0]
        cells = features.descriptors.reshape(-1, 4, 4, 8)[:, ::-1][:, :, :, _NEGATED]
        return FrameFeatures(features.t, points, np.ascontiguousarray(cells.reshape(-1, 128)))

    def _describe(self, t: float, picture: np.ndarray) -> FrameFeatures | None:
        keypoints, descriptors = self._sift.detectAndCompute(picture, None)
        if descriptors is None or len(keypoints) < MIN_KEYPOINTS:
            return None
        return FrameFeatures(t, np.float32([k.pt for k in keypoints]),
                             np.clip(np.rint(descriptors), 0, 255).astype(np.uint8))


_NEGATED = (-np.arange(8)) % 8


@dataclass(frozen=True)
class FeaturePair:
    query_t: float
    reference_t: float
    inliers: int
    scale: float  # reference pixels per query pixel


@dataclass(frozen=True)
class HashAlignment:
    """Where a frame-hash match too weak to list puts the query in a video:
    reference_t = offset_s + speed * query_t, the query mirrored or not, over
    the stretch of the query its frames met."""

    speed: float
    offset_s: float
    mirrored: bool
    query_segment: tuple[float, float]


@dataclass(frozen=True)
class FeatureMatch:
    video_id: int
    pairs: list[FeaturePair]  # the query frames that keep the pace, in query order
    speed: float  # reference seconds per query second; negative: played backwards
    offset_s: float
    mirrored: bool
    # The weak frame-hash match whose alignment the pairs keep, which counts as
    # CORROBORATING_FRAMES more frames; None when the keypoints stand alone.
    hashed: HashAlignment | None = None

    @property
    def corroborated(self) -> bool:
        return self.hashed is not None

    @property
    def support(self) -> int:
        """Frames of evidence: the pairs, and a corroborating hash match's."""
        return len(self.pairs) + (CORROBORATING_FRAMES if self.corroborated else 0)

    @property
    def score(self) -> float:
        return min(1.0, self.support / FULL_SUPPORT_FRAMES)

    @property
    def instants(self) -> int:
        """The distinct frames of the video the pairs meet."""
        return len({p.reference_t for p in self.pairs})

    @property
    def scale(self) -> float:
        return float(np.median([p.scale for p in self.pairs]))


def find_feature_matches(plain: list[FrameFeatures], mirrored: list[FrameFeatures],
                         indexed: Iterable[tuple[int, FrameFeatures]], *,
                         min_frames: int = MIN_FRAMES, skip: Iterable[int] = (),
                         hash_alignments: Mapping[int, HashAlignment] | None = None
                         ) -> list[FeatureMatch]:
    """The indexed videos (but ``skip``) of which ``min_frames`` or more frames are
    met by query frames at one pace, with MIN_TOTAL_INLIERS among them, best first; the
    query read as it is or mirrored, whichever meets more. The skipped videos
    still take part in the ratio test: a keypoint that an already-matched video
    shares with another is no evidence for the other.

    A video in ``hash_alignments`` (its frame hashes met the query, too weakly to
    list it) needs CORROBORATING_FRAMES fewer frames met on that very alignment:
    two independent measurements agreeing on where the query sits in the video
    (a small picture in a 9:16 frame, news graphics over a trimmed subclip, whose
    few frames each measurement meets by itself)."""
    frames = list(indexed)
    if not frames or not (plain or mirrored):
        return []
    pool = _KeypointPool(frames, set(skip))
    best: dict[int, FeatureMatch] = {}
    for is_mirror, query in ((False, plain), (True, mirrored)):
        met: dict[int, list[FeaturePair]] = {}
        for q in query:
            for video_id, pair in _frame_meets(q, pool):
                met.setdefault(video_id, []).append(pair)
        for video_id, pairs in met.items():
            match = _paced(video_id, pairs, is_mirror)
            if not _enough(match, min_frames):
                hashed = (hash_alignments or {}).get(video_id)
                if hashed is None or hashed.mirrored != is_mirror:
                    continue
                match = _on_alignment(video_id, pairs, hashed)
                if not _enough(match, min_frames - CORROBORATING_FRAMES):
                    continue
            if video_id not in best or match.support > best[video_id].support:
                best[video_id] = match
    return sorted(best.values(), key=lambda m: (-m.support, m.video_id))


def _enough(match: FeatureMatch | None, min_frames: int) -> bool:
    return (match is not None and match.instants >= min_frames
            and sum(p.inliers for p in match.pairs) >= MIN_TOTAL_INLIERS)


def _on_alignment(video_id: int, pairs: list[FeaturePair], hashed: HashAlignment
                  ) -> FeatureMatch | None:
    """The pairs that keep the pace a frame-hash match found."""
    on_line = [p for p in pairs
               if abs(p.reference_t - (hashed.offset_s + hashed.speed * p.query_t))
               <= PACE_TOLERANCE_S]
    if not on_line:
        return None
    return FeatureMatch(video_id, sorted(on_line, key=lambda p: p.query_t), hashed.speed,
                        round(hashed.offset_s, 3), hashed.mirrored, hashed=hashed)


class _KeypointPool:
    """Every stored keypoint in one FLANN tree, each row knowing its frame and video."""

    def __init__(self, frames: list[tuple[int, FrameFeatures]], skipped: set[int]) -> None:
        self.frames = frames
        self.descriptors = np.concatenate([f.descriptors for _, f in frames]).astype(np.float32)
        counts = [len(f.descriptors) for _, f in frames]
        self.frame_of = np.repeat(np.arange(len(frames)), counts)
        self.video_of = np.repeat([video_id for video_id, _ in frames], counts)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.eligible = np.array([video_id not in skipped for video_id, _ in frames])
        self._matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
        self._matcher.add([self.descriptors])
        # FLANN's trees are random, drawn from OpenCV's generator: unseeded, the
        # nearest neighbours it finds (2-3 % of a query's pairings) depend on how
        # many trees were built before in the process, and a clip checked in a
        # batch could be found or missed by its place in the batch.
        cv2.setRNGSeed(FLANN_SEED)
        self._matcher.train()

    def distinctive(self, query: FrameFeatures) -> list[tuple[int, int]]:
        """(query row, pool row) of the query's keypoints that pass Lowe's ratio
        test, each paired with its nearest neighbour and that neighbour's twins
        (of them, those in eligible videos). A twin is the same point in another
        copy of the footage: a neighbour in a video not met yet, nearer the
        nearest than the query is. It is no rival, so footage indexed many times
        (an original and its reposts) is met in every copy. The rival is the
        first neighbour that is no twin: a point repeated within a video (a
        static backdrop, the office wall behind a signer, in each of its frames)
        has one as near as itself."""
        good = []
        for m in self._matcher.knnMatch(query.descriptors.astype(np.float32), k=TWINS + 1):
            if len(m) < 2:
                continue
            nearest = m[0].trainIdx
            paired, videos, rival = [nearest], {self.video_of[nearest]}, None
            for other in m[1:]:
                video = self.video_of[other.trainIdx]
                if (video in videos or np.linalg.norm(self.descriptors[nearest]
                                                      - self.descriptors[other.trainIdx])
                        >= m[0].distance):
                    rival = other
                    break
                paired.append(other.trainIdx)
                videos.add(video)
            if rival is None or m[0].distance < RATIO * rival.distance:
                good += [(m[0].queryIdx, row) for row in paired
                         if self.eligible[self.frame_of[row]]]
        return good


def _frame_meets(query: FrameFeatures, pool: _KeypointPool) -> Iterable[tuple[int, FeaturePair]]:
    """For each eligible indexed video, the best-verified of its frames this query
    frame meets."""
    good = pool.distinctive(query)
    if not good:
        return
    q_rows, rows = np.array(good).T
    frame_of = pool.frame_of[rows]
    candidates, votes = np.unique(frame_of, return_counts=True)
    best: dict[int, FeaturePair] = {}
    for k in np.argsort(-votes, kind="stable")[:CANDIDATE_FRAMES]:
        if votes[k] < MIN_VOTES:
            break
        frame = candidates[k]
        video_id, stored = pool.frames[frame]
        chosen = frame_of == frame
        transform, mask = cv2.estimateAffinePartial2D(
            query.points[q_rows[chosen]], stored.points[rows[chosen] - pool.starts[frame]],
            method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX)
        inliers = int(mask.sum()) if mask is not None else 0
        if transform is None or inliers < MIN_INLIERS:
            continue
        scale = float(np.hypot(transform[0, 0], transform[0, 1]))
        if video_id not in best or inliers > best[video_id].inliers:
            best[video_id] = FeaturePair(query.t, stored.t, inliers, round(scale, 3))
    yield from best.items()


def _paced(video_id: int, pairs: list[FeaturePair], mirrored: bool) -> FeatureMatch | None:
    """The pairs on one line reference_t = offset + speed * query_t, its speed one
    of match.SPEEDS, anchored on one of the pairs, that meet the most distinct
    frames of the video (then the most pairs). Query frames that all meet one
    frame (a still, a static backdrop) fit any slow line: they count once."""
    # Imported here: match imports the search structure, which imports the index,
    # which imports this module.
    from .match import SPEEDS

    best: list[FeaturePair] = []
    best_rank, best_speed, best_offset = (0, 0), 1.0, 0.0
    for anchor in pairs:
        for speed in SPEEDS:
            offset = anchor.reference_t - speed * anchor.query_t
            on_line = [p for p in pairs
                       if abs(p.reference_t - (offset + speed * p.query_t)) <= PACE_TOLERANCE_S]
            rank = (len({p.reference_t for p in on_line}), len(on_line))
            if rank > best_rank:
                best, best_rank, best_speed, best_offset = on_line, rank, speed, offset
    if not best:
        return None
    return FeatureMatch(video_id, sorted(best, key=lambda p: p.query_t), best_speed,
                        round(best_offset, 3), mirrored)


def to_blobs(features: FrameFeatures) -> tuple[bytes, bytes]:
    """The stored form: little-endian float32 points and the descriptor bytes."""
    return (features.points.astype("<f4").tobytes(), features.descriptors.tobytes())


def from_blobs(t: float, points: bytes, descriptors: bytes) -> FrameFeatures:
    return FrameFeatures(t, np.frombuffer(points, "<f4").reshape(-1, 2).astype(np.float32),
                         np.frombuffer(descriptors, np.uint8).reshape(-1, DESCRIPTOR_BYTES))
