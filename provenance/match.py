"""Match stage: find indexed videos that share footage with a query, aligned in time.

Contract: ``find_matches(query, search, durations_of, params)`` returns the
matches whose score is at or above ``params.score_threshold``, best first.
Every indexed frame within ``params.radius`` bits of a query frame, in any of
the query's views (the footage, the whole picture, their mirror images, inset
regions), is found by an exact range search. Per candidate video, the
frame pairs vote on a time alignment ``reference_t = speed * query_t + offset``
over a set of playback speeds; the pairs consistent with the winning alignment
give the matched segment on both timelines. Scores combine how densely the
query's frames inside the segment are evidence of that alignment (matched
there clearly closer than elsewhere in the video, or near copies; each
reference instant counted once), how close the hashes were, and how many
frames agree: a lone coincidental frame never makes a match, nor does still
footage that merely looks alike.

``keypoint_match`` turns what the keypoints found (features.find_feature_matches,
run for the videos no hash met) into the same kind of match.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from .frame_search import FrameSearch
from .views import CENTRE_SHARE, Box, View

if TYPE_CHECKING:
    from .features import FeatureMatch

# Reference seconds per query second: 1.5 means the query is sped up 1.5x; a
# negative speed, that it plays the footage backwards (reversed footage passes
# a retreat for an advance, a crowd dispersing for one gathering).
SPEEDS = (1.0, 0.5, 2 / 3, 0.75, 0.8, 0.9, 1.1, 1.25, 4 / 3, 1.5, 2.0, -1.0)
FULL_SUPPORT_FRAMES = 8  # query frames of evidence for full support (2 s at the query rate)
# Evidence is counted as a share of the query's frames in the segment, so that
# a few coincidences spread over a long stretch never add up; but this many
# frames of evidence (10 s at the query rate) pin one alignment by themselves,
# however many frames between them a heavy edit spoiled. On bench/accuracy the
# wrong videos listed at any score had at most 8 frames of evidence, the
# look-alikes included; right ones scoring under the threshold matched up to 91.
PROOF_FRAMES = 40
PLAIN_ALIGNMENT_MARGIN = 1.15
SPEED_CLAIM_MIN_CHANGE = 0.15
# How far (reference seconds) a pair may sit from the alignment line: the
# nearest indexed sample is within half the index interval (0.06 s at
# 0.125 s), plus the 0.09 s each sample averages over, plus slack for the
# fitted speed and the sample a scene cut adds.
ALIGNMENT_TOLERANCE_S = 0.3
# A pair is evidence of its alignment when its query frame matches at least
# TIME_MARGIN_BITS closer there than anywhere over ELSEWHERE_S away in the
# video, or is a near copy (within NEAR_COPY_BITS) (see _tells_time). Evidence
# is counted in distinct reference instants, not query frames: query frames
# every 0.25 s meet indexed ones every 0.125 s, so no copy played at half speed
# or faster needs one instant twice, while a look-alike's still moments do. With
# the bench's ASL split reversed, another sign by the same signer met asl-learn's
# opening rest pose and first hand movement at 4 instants with 8 query frames
# (10-24 bits, half speed): 0.72 counted by frames, 0.18 by instants. Counted
# by frames, 20 of that split's 430 queries listed a wrong video; by instants
# none, and no copy in bench/accuracy was lost.
ELSEWHERE_S = 1.0
# A repeat of the whole footage (a loop) must meet this many query frames of its
# own to count, and at most this many repeats are looked for.
MIN_REPEAT_FRAMES = 4
MAX_REPEATS = 8
TIME_MARGIN_BITS = 3
NEAR_COPY_BITS = 16


@dataclass(frozen=True)
class QueryFrames:
    times: np.ndarray  # seconds since the query's first frame
    # One (n, words) uint64 array per view of the frames; the first is the
    # plain view, preferred when several explain a match about as well.
    views: list[tuple[View, np.ndarray]]
    duration_s: float


@dataclass(frozen=True)
class MatchParams:
    radius: int
    score_threshold: float
    query_interval_s: float
    min_frames: int = 2


@dataclass(frozen=True)
class FramePair:
    query_t: float
    reference_t: float
    distance: int | None  # Hamming bits; None for a pair of keypoint frames
    inliers: int | None = None  # keypoints a similarity carries onto the other frame's


# How a match was found: frame hashes within the radius, or keypoints (features).
METHOD_HASHES = "frame_hashes"
METHOD_KEYPOINTS = "keypoints"


RELATION_KINDS = ("identical_file", "reencoded", "subclip", "extended", "mirrored",
                  "speed_changed", "reframed", "overlaid", "inside_other_footage", "rotated",
                  "edges_differ", "cropped", "reversed", "repeated")


@dataclass(frozen=True)
class Relation:
    """One claim about how the query differs from a match, with the number behind it."""

    kind: str  # one of RELATION_KINDS
    evidence: str
    value: float | None = None


@dataclass(frozen=True)
class VideoMatch:
    video_id: int
    score: float
    query_segment: tuple[float, float]
    reference_segment: tuple[float, float]
    query_coverage: float
    reference_coverage: float
    matched_frames: int
    mean_distance: float | None  # None when matched by keypoints
    speed: float  # reference seconds per query second; negative: played backwards
    offset_s: float
    view: View  # the view of the query frames that matched
    pairs: list[FramePair] = field(default_factory=list)
    # Query frames the whole footage (the first view of the same mirroring that is
    # not a centre) matched anywhere in this video: what a centre match is
    # measured against.
    plain_frames: int = 0
    # How many times the query plays this footage (a loop: 2 or more), each pass
    # at ``speed``; ``offset_s`` is the first pass's.
    passes: int = 1
    method: str = METHOD_HASHES
    # Matched by keypoints: the share of the reference's width and of its height
    # the query's picture spans, by the similarity found (1.0: all of it or more).
    shown_share: tuple[float, float] | None = None
    # Matched by keypoints, fewer than they need alone, at the alignment of a
    # frame-hash match too weak to list (features.CORROBORATING_FRAMES).
    corroborated: bool = False

    @property
    def mirrored(self) -> bool:
        return self.view.mirrored


def keypoint_match(found: FeatureMatch, *, query_duration_s: float, query_step_s: float,
                   query_aspect: float | None, reference_duration_s: float | None,
                   reference_aspect: float | None) -> VideoMatch:
    """A keypoint match as a VideoMatch. Its segments run from the first frame
    that met to a step after the last (frames are described every
    ``query_step_s``), and over the frames a corroborating hash match met on the
    same alignment, within both videos' durations."""
    qa, qb = found.pairs[0].query_t, found.pairs[-1].query_t
    if query_duration_s:
        qb = min(query_duration_s, qb + query_step_s)
    if found.hashed is not None:
        qa, qb = min(qa, found.hashed.query_segment[0]), max(qb, found.hashed.query_segment[1])
    ends = sorted(found.offset_s + found.speed * t for t in (qa, qb))
    ra, rb = max(0.0, ends[0]), ends[1]
    if reference_duration_s:
        rb = min(rb, reference_duration_s)
    rb = max(ra, rb)
    shown = None
    if query_aspect and reference_aspect:
        # Upright pictures are FRAME_SIZE on their shorter side (features.upright).
        q_w, q_h = (query_aspect, 1.0) if query_aspect >= 1 else (1.0, 1 / query_aspect)
        r_w, r_h = (reference_aspect, 1.0) if reference_aspect >= 1 else (1.0, 1 / reference_aspect)
        shown = (round(min(1.0, q_w * found.scale / r_w), 3),
                 round(min(1.0, q_h * found.scale / r_h), 3))
    return VideoMatch(
        video_id=found.video_id, score=round(found.score, 4), query_segment=(qa, round(qb, 3)),
        reference_segment=(round(ra, 3), round(rb, 3)),
        query_coverage=round((qb - qa) / query_duration_s, 4) if query_duration_s else 1.0,
        reference_coverage=round((rb - ra) / reference_duration_s, 4)
        if reference_duration_s else 1.0,
        matched_frames=len(found.pairs), mean_distance=None, speed=found.speed,
        offset_s=found.offset_s, view=View("keypoints", Box(), found.mirrored),
        pairs=[FramePair(p.query_t, p.reference_t, None, p.inliers) for p in found.pairs],
        plain_frames=len(found.pairs), method=METHOD_KEYPOINTS, shown_share=shown,
        corroborated=found.corroborated)


def find_matches(query: QueryFrames, search: FrameSearch,
                 durations_of: Callable[[list[int]], dict[int, float | None]],
                 params: MatchParams) -> list[VideoMatch]:
    """The indexed videos that share footage with the query, best first: those
    scoring ``params.score_threshold`` or more (at 0, every video that shares
    any aligned frames)."""
    if len(query.times) == 0 or len(search) == 0:
        return []
    # One search for every view: the views' rows are stacked and told apart after.
    # A query's centre views meet only the index's centre hashes and its other
    # views only the others: a pair across the two would claim a zoom or an
    # inset no rung of either ladder measured.
    stacked = np.concatenate([hashes for _, hashes in query.views])
    frames_per_view = len(query.times)
    of_centre = np.repeat([view.of_centre for view, _ in query.views], frames_per_view)
    found = search.range_search(stacked, params.radius, centre=of_centre)
    view_of_pair = found.query_rows // frames_per_view
    q_idx = found.query_rows % frames_per_view
    video_of_pair, ref_times, dist = found.video_ids, found.times, found.distances
    candidates = np.unique(video_of_pair)
    durations = durations_of([int(v) for v in candidates])
    matches = []
    for video_id in candidates:
        sel = video_of_pair == video_id
        found = _align_video(int(video_id), query, q_idx[sel], ref_times[sel],
                             dist[sel], view_of_pair[sel], durations.get(int(video_id)), params)
        if found is not None and found.score >= params.score_threshold:
            matches.append(found)
    return sorted(matches, key=lambda m: (-m.score, m.video_id))


def _align_video(video_id: int, query: QueryFrames, q_idx: np.ndarray, ref_t: np.ndarray,
                 dist: np.ndarray, view_of_pair: np.ndarray, ref_duration: float | None,
                 params: MatchParams) -> VideoMatch | None:
    tolerance = ALIGNMENT_TOLERANCE_S
    query_t = query.times[q_idx]
    weight = 1.0 - dist / (params.radius + 1)
    candidates = []
    for view_index in range(len(query.views)):
        sel = np.flatnonzero(view_of_pair == view_index)
        if np.unique(q_idx[sel]).size < min(params.min_frames, len(query.times)):
            continue
        qt, rt, qi, w = query_t[sel], ref_t[sel], q_idx[sel], weight[sel]
        # One instant of the reference tells no speed: any fits it as well.
        for speed in SPEEDS if np.unique(rt).size > 1 else SPEEDS[:1]:
            offset = _vote_offset(qt, rt, qi, w, speed, tolerance)
            inliers = _inliers(qt, rt, dist[sel], qi, speed, offset, tolerance)
            speed, offset, inliers = _refine(qt, rt, dist[sel], qi, speed, offset, inliers,
                                             tolerance, fit_speed=speed != 1.0)
            groups = [(offset, inliers)]
            if speed == 1.0 and ref_duration:
                groups += _repeats(qt, rt, dist[sel], qi, offset, inliers, ref_duration,
                                   tolerance)
            every = np.concatenate([group for _, group in groups])
            candidates.append((float(w[every].sum()), view_index, speed, offset,
                               [(o, sel[group]) for o, group in groups]))
    if not candidates:
        return None
    # Static footage fits many alignments about as well: the plain one (first
    # view, same speed) stands unless another matches more query frames or
    # matches them clearly closer.
    plain = candidates[0] if candidates[0][1] == 0 else None
    best = max(candidates, key=lambda c: c[0])
    if (plain is not None and _pairs(best) <= _pairs(plain)
            and best[0] < plain[0] * PLAIN_ALIGNMENT_MARGIN):
        best = plain
    _, view_index, speed, offset, groups = best
    chosen = np.concatenate([group for _, group in groups])
    n = len(chosen)
    if n < min(params.min_frames, len(query.times)):
        return None
    qt, rt, d = query_t[chosen], ref_t[chosen], dist[chosen]
    step = params.query_interval_s
    q_seg = (float(qt.min()), float(min(qt.max() + step, max(query.duration_s, qt.max()))))
    # The reference segment follows the fitted alignment, not the sample times,
    # whose phase differs between the two copies by up to one interval.
    r_start, r_end = sorted((speed * q_seg[0] + offset, speed * q_seg[1] + offset))
    r_start = max(0.0, r_start)
    if ref_duration:
        r_end = min(r_end, ref_duration)
    r_seg = (float(r_start), float(max(r_end, r_start)))
    in_segment = np.count_nonzero((query.times >= q_seg[0]) & (query.times <= qt.max()))
    evidence = 0
    for group_offset, group in groups:
        telling = _tells_time(query_t, ref_t, dist, q_idx, view_of_pair == view_index, group,
                              speed, group_offset, params.radius)
        evidence += np.unique(ref_t[group][telling]).size
    density = max(evidence / max(in_segment, 1), min(1.0, evidence / PROOF_FRAMES))
    closeness = 1.0 - float(d.mean()) / (params.radius + 1)
    support = min(1.0, evidence / FULL_SUPPORT_FRAMES)
    score = density * (0.5 + 0.5 * closeness) * support
    q_len = query.duration_s or (q_seg[1] - q_seg[0])
    order = np.argsort(qt)
    return VideoMatch(
        video_id=video_id,
        score=round(float(score), 4),
        query_segment=(round(q_seg[0], 3), round(q_seg[1], 3)),
        reference_segment=(round(r_seg[0], 3), round(r_seg[1], 3)),
        query_coverage=round(min(1.0, (q_seg[1] - q_seg[0]) / q_len) if q_len else 1.0, 4),
        reference_coverage=round(min(1.0, (r_seg[1] - r_seg[0]) / ref_duration), 4)
        if ref_duration else 0.0,
        matched_frames=n,
        plain_frames=int(np.unique(q_idx[view_of_pair == _whole_view(query, view_index)]).size),
        mean_distance=round(float(d.mean()), 2),
        speed=round(float(speed), 4),
        offset_s=round(float(offset), 3),
        view=query.views[view_index][0],
        passes=len(groups),
        # To the millisecond: the search keeps reference times in float32.
        pairs=[FramePair(round(float(qt[i]), 3), round(float(rt[i]), 3), int(d[i]))
               for i in order],
    )


def _whole_view(query: QueryFrames, view_index: int) -> int:
    mirrored = query.views[view_index][0].mirrored
    return next((i for i, (view, _) in enumerate(query.views)
                 if not view.of_centre and view.mirrored == mirrored), 0)


def _pairs(candidate) -> int:
    return sum(len(group) for _, group in candidate[4])


def _repeats(qt, rt, dist, qi, offset, inliers, period, tolerance) -> list[tuple[float, np.ndarray]]:
    """A copy that plays the whole footage again (looped, or repeated in a
    compilation) meets it at speed 1 at offsets a whole duration apart: (offset,
    inliers) at each such offset that meets MIN_REPEAT_FRAMES query frames not
    met yet. Without them a short clip played twice fitted a slower speed
    better than either pass (8 of bench/accuracy's 25 loops read 0.44-0.86x)."""
    met = set(qi[inliers].tolist())
    span = float(qt.max() - qt.min())
    found = []
    for k in range(1, min(MAX_REPEATS, int(span // period) + 1) + 1):
        for repeat_offset in (offset - k * period, offset + k * period):
            extra = _inliers(qt, rt, dist, qi, 1.0, repeat_offset, tolerance)
            extra = extra[~np.isin(qi[extra], list(met))]
            if np.unique(qi[extra]).size >= MIN_REPEAT_FRAMES:
                found.append((repeat_offset, extra))
                met |= set(qi[extra].tolist())
    return found


def _tells_time(query_t, ref_t, dist, q_idx, in_view, chosen, speed, offset, radius
                ) -> np.ndarray:
    """Which chosen pairs are evidence of this alignment: the query frame matches
    clearly closer here than anywhere else in the video, or is a near copy.

    Still footage (one office, one signer) matches at every offset alike, so a
    consistent alignment proves nothing there: look-alike clips reached 0.62
    on alignment alone, at 24-27 bits a frame."""
    pairs = np.flatnonzero(in_view)
    elsewhere = np.abs(ref_t[pairs] - speed * query_t[pairs] - offset) > ELSEWHERE_S
    best_elsewhere = np.full(int(q_idx.max()) + 1, radius + 1, dtype=np.int64)
    np.minimum.at(best_elsewhere, q_idx[pairs[elsewhere]], dist[pairs[elsewhere]])
    here = dist[chosen]
    return (best_elsewhere[q_idx[chosen]] - here >= TIME_MARGIN_BITS) | (here <= NEAR_COPY_BITS)


def _vote_offset(qt: np.ndarray, rt: np.ndarray, qi: np.ndarray, w: np.ndarray,
                 speed: float, tolerance: float) -> float:
    """The offset best supported by distinct query frames, each counted once at its
    closest hash."""
    offsets = rt - speed * qt
    order = np.argsort(offsets)
    sorted_offsets = offsets[order]
    ends = np.searchsorted(sorted_offsets, sorted_offsets + tolerance, side="right")
    cumulative = np.concatenate([[0.0], np.cumsum(w[order])])
    # Window sums overstate static footage (one query frame, many reference
    # frames); score the leading windows exactly.
    window_sums = cumulative[ends] - cumulative[:-1]
    best_offset, best_support = 0.0, -1.0
    for start in np.argsort(-window_sums, kind="stable")[:16]:
        window = order[start:ends[start]]
        support = _best_per_frame(qi[window], w[window]).sum()
        if support > best_support:
            best_support = support
            best_offset = float(np.median(offsets[window]))
    return best_offset


def _best_per_frame(qi: np.ndarray, w: np.ndarray) -> np.ndarray:
    order = np.lexsort((-w, qi))
    _, first = np.unique(qi[order], return_index=True)
    return w[order][first]


def _inliers(qt, rt, dist, qi, speed, offset, tolerance) -> np.ndarray:
    """Indices of consistent pairs, one per query frame (the closest hash)."""
    residual = np.abs(rt - speed * qt - offset)
    candidates = np.flatnonzero(residual <= tolerance)
    if len(candidates) == 0:
        return candidates
    order = candidates[np.lexsort((residual[candidates], dist[candidates], qi[candidates]))]
    _, first = np.unique(qi[order], return_index=True)
    return order[first]


def _refine(qt, rt, dist, qi, speed, offset, inliers, tolerance, fit_speed):
    """Re-centre the offset on the inliers and, for a changed speed, fit it exactly."""
    if len(inliers) == 0:
        return speed, offset, inliers
    if fit_speed and len(inliers) >= 4 and np.ptp(qt[inliers]) >= 2.0:
        fitted, _ = np.polyfit(qt[inliers], rt[inliers], 1)
        if 0.4 <= abs(fitted) <= 2.5 and fitted * speed > 0:
            speed = float(fitted)
    offset = float(np.median(rt[inliers] - speed * qt[inliers]))
    refit = _inliers(qt, rt, dist, qi, speed, offset, tolerance)
    return (speed, offset, refit) if len(refit) >= len(inliers) else (speed, offset, inliers)


def describe_relations(m: VideoMatch, *, same_file: bool, query_shape: tuple[int, int],
                       reference_shape: tuple[int | None, int | None]) -> list[Relation]:
    """What was done to the footage, claimed only where a measured number backs it."""
    if same_file:
        return [Relation("identical_file", "same SHA-256: byte-for-byte the same file")]
    if m.method == METHOD_KEYPOINTS:
        inliers = int(np.median([p.inliers for p in m.pairs]))
        hashes = ("frame hashes met too weakly to list it, at the alignment the keypoints keep"
                  if m.corroborated else "no frame hash met")
        found = [Relation("reencoded", f"same footage, different file; {hashes}, "
                                       f"{m.matched_frames} frames met by keypoints (median "
                                       f"{inliers} carried by one similarity transform)", None)]
    else:
        found = [Relation("reencoded", f"same footage, different file; mean hash distance "
                                       f"{m.mean_distance:.1f} bits over {m.matched_frames} "
                                       "frames", m.mean_distance)]
    ra, rb = m.reference_segment
    qa, qb = m.query_segment
    if m.reference_coverage < 0.9:
        found.append(Relation("subclip", f"query shows reference {ra:.1f}-{rb:.1f} s, "
                                         f"{m.reference_coverage:.0%} of it", m.reference_coverage))
    if m.query_coverage < 0.9:
        found.append(Relation("extended", f"only query {qa:.1f}-{qb:.1f} s ({m.query_coverage:.0%})"
                                          " is this footage; the rest is other material",
                              m.query_coverage))
    if m.mirrored:
        found.append(Relation("mirrored", "frames match only when flipped left-right"))
    if m.passes > 1:
        found.append(Relation("repeated", f"plays this footage {m.passes} times (looped or "
                                          "repeated), each pass matched on its own", m.passes))
    if m.speed < 0:
        found.append(Relation("reversed", "plays the footage backwards: the query's later "
                                          "frames match the reference's earlier ones", None))
    # Claimed only beyond what sampling jitter can fit on a short match.
    if abs(abs(m.speed) - 1.0) > SPEED_CLAIM_MIN_CHANGE:
        word = "sped up" if abs(m.speed) > 1 else "slowed down"
        found.append(Relation("speed_changed", f"{word}: {abs(m.speed):.2f} reference seconds "
                                               "per query second", abs(m.speed)))
    if m.view.overlay is not None:
        found.append(Relation(
            "overlaid", f"matched only once static graphics (captions, text, logos, stickers) "
                        f"covering {m.view.overlay_area:.0%} of the picture were filled in",
            round(m.view.overlay_area, 4)))
    if m.view.rotation is not None:
        turn = m.view.rotation.degrees
        found.append(Relation(
            "rotated", f"matched only once turned back {abs(turn):.1f} degrees "
                       f"{'anticlockwise' if turn > 0 else 'clockwise'}: the picture was turned "
                       "inside its frame and its corners cut off", turn))
    # The centre of an untouched copy matches as well as the whole, and wins now
    # and then: the edges are said to differ only where the whole footage
    # matched under half as many frames. An inset's centre and a turned copy's
    # centre say nothing of the edges (a turned copy's corners were cut off).
    of_footage_centre = (m.view.scale is not None and m.view.inset is None
                         and m.view.rotation is None)
    if of_footage_centre and m.view.scale == 1.0:
        if m.plain_frames < m.matched_frames / 2:
            found.append(Relation(
                "edges_differ", f"matched on the middle {CENTRE_SHARE:.0%} of the footage in "
                                f"{m.matched_frames} frames, the whole footage in "
                                f"{m.plain_frames}: its edges differ (captions, text, tickers, "
                                "logos, a slight crop, or an edit that changed the edges more "
                                "than the centre)",
                round(m.plain_frames / m.matched_frames, 4)))
    elif of_footage_centre:
        found.append(Relation(
            "cropped", f"matched only once the query's centre was taken at "
                       f"{CENTRE_SHARE / m.view.scale:.0%}: the query shows about "
                       f"{m.view.scale:.0%} of the reference's width and height (cropped or "
                       "zoomed in)", m.view.scale))
    if m.shown_share is not None and min(m.shown_share) < 0.9:
        w, h = m.shown_share
        found.append(Relation(
            "cropped", f"matched by keypoints: the query shows about {w:.0%} of the reference's "
                       f"width and {h:.0%} of its height (cropped or zoomed in)",
            round(float(np.sqrt(w * h)), 4)))
    if m.view.inset is not None:
        b = m.view.inset
        found.append(Relation(
            "inside_other_footage",
            f"matched only inside the query's region x {b.x0:.2f}-{b.x1:.2f}, y {b.y0:.2f}-{b.y1:.2f}"
            f" ({b.area:.0%} of the picture): an inset, a split screen or a screen recording",
            b.area))
    qw, qh = query_shape
    rw, rh = reference_shape
    if qw and qh and rw and rh:
        q_aspect, r_aspect = qw / qh, rw / rh
        if abs(q_aspect / r_aspect - 1.0) > 0.05:
            how = "(cropped, letterboxed or padded)"
            if m.view.part is not None:
                cut = ("the narrower picture is the wider cut at its sides, as platforms fill a "
                       "square or vertical frame" if m.view.part == "9:16" else
                       "the wider picture is the taller cut top and bottom, as a vertical or 4:3 "
                       "clip fills a landscape frame")
                how = f"(matched on the footage's centred {m.view.part} part, both keep it: {cut})"
            found.append(Relation("reframed", f"aspect ratio {r_aspect:.2f} became {q_aspect:.2f} "
                                              f"{how}", q_aspect / r_aspect))
    return found
