"""Matching decides on evidence of time: still footage that merely looks alike is not
listed, while copies are, however heavily edited, when their frames tell the time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from provenance.config import Settings
from provenance.fetch import FetchedMedia, SourceMetadata
from provenance.frame_search import FrameSearch
from provenance.index import VIEW_CENTRE, Index
from provenance.features import FeatureMatch, FeaturePair, HashAlignment
from provenance.match import (MatchParams, QueryFrames, describe_relations, find_matches,
                              keypoint_match)
from provenance.views import FULL, Rotation, View

WORDS = 4  # PDQ: 256 bits
STEP = 0.125  # the index's sampling interval


def _flip(row: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = row.copy()
    for bit in rng.choice(64 * WORDS, bits, replace=False):
        out[bit // 64] ^= np.uint64(1) << np.uint64(int(bit) % 64)
    return out


def _add(index: Index, name: str, hashes: np.ndarray, centre: np.ndarray | None = None) -> int:
    media = FetchedMedia(Path(f"/clips/{name}.mp4"), name * 8, 1,
                         SourceMetadata(source=f"/clips/{name}.mp4",
                                        retrieved_at="2026-01-01T00:00:00Z"))
    n = len(hashes)
    return index.add_video(media, duration_s=n * STEP, width=640, height=360, container_tags={},
                           times=[i * STEP for i in range(n)], details=[40.0] * n, hashes=hashes,
                           sampling=2,
                           views=None if centre is None else {VIEW_CENTRE: centre})


def _params() -> MatchParams:
    settings = Settings()
    return MatchParams(radius=settings.radius_for("pdq"),
                       score_threshold=settings.match_score_threshold,
                       query_interval_s=settings.query_interval_s)


@pytest.fixture()
def indexed(tmp_path):
    rng = np.random.default_rng(7)
    still_picture = rng.integers(0, 2**64, size=WORDS, dtype=np.uint64)
    # 10 s of a still shot (an office, a signer barely moving): frames a few bits apart.
    still = np.array([_flip(still_picture, 2, rng) for _ in range(80)])
    # 10 s of moving footage: every frame far from the others.
    moving = rng.integers(0, 2**64, size=(80, WORDS), dtype=np.uint64)
    index = Index(tmp_path / "index.db", default_scheme="pdq-256-v1")
    ids = {"still": _add(index, "still", still), "moving": _add(index, "moving", moving)}
    yield index, ids, still_picture, moving, rng
    index.close()


def _listed(index: Index, hashes: np.ndarray, times: np.ndarray) -> list[int]:
    query = QueryFrames(times, [(View("content", FULL, False), hashes)],
                        float(times[-1] + 0.25))
    return [m.video_id for m in find_matches(query, FrameSearch.open(index), index.durations,
                                             _params())]


def test_still_footage_that_only_looks_alike_is_not_listed(indexed):
    index, ids, still_picture, _, rng = indexed
    # Another clip shot on the same spot: every frame 24 bits from the indexed still
    # shot, consistent with any alignment, so with none in particular.
    times = np.arange(8) * 0.25
    lookalike = np.array([_flip(still_picture, 24, rng) for _ in times])
    assert _listed(index, lookalike, times) == []
    # A copy of that still shot is near-identical, and is listed.
    copy = np.array([_flip(still_picture, 4, rng) for _ in times])
    assert _listed(index, copy, times) == [ids["still"]]


def test_heavily_edited_copy_of_moving_footage_is_listed_at_the_same_distance(indexed):
    index, ids, _, moving, rng = indexed
    # Query frame k shows reference time 1.0 + k * 0.25 s, each 24 bits off: as far as
    # the look-alike above, but only one alignment explains the frames.
    times = np.arange(16) * 0.25
    edited = np.array([_flip(moving[8 + 2 * k], 24, rng) for k in range(len(times))])
    assert _listed(index, edited, times) == [ids["moving"]]


def test_a_look_alike_whose_frames_crowd_onto_a_few_reference_instants_is_not_listed(tmp_path):
    # A 2 s clip of a signer; another sign by the same signer, checked against it,
    # holds each of three of its moments (the rest pose, the hands rising) over three
    # query frames, 14-22 bits off, as if the clip were slowed down.
    rng = np.random.default_rng(3)
    clip = rng.integers(0, 2**64, size=(16, WORDS), dtype=np.uint64)
    with Index(tmp_path / "index.db", default_scheme="pdq-256-v1") as index:
        video = _add(index, "signer", clip)
        times = np.arange(9) * 0.25
        held = [(1, 14), (4, 20), (7, 22)]  # (reference frame, bits off) per 3 frames
        other_sign = np.array([_flip(clip[frame], bits, rng)
                               for frame, bits in held for _ in range(3)])
        assert _listed(index, other_sign, times) == []
        # A copy slowed to half speed shows a new reference instant in every query
        # frame, at least as far off, and is listed.
        slowed = np.array([_flip(clip[k], 22, rng) for k in range(len(times))])
        assert _listed(index, slowed, times) == [video]


def _spoiled_copy(moving: np.ndarray, kept: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``moving`` sampled every 0.25 s, 24 bits off where ``kept``, and
    elsewhere spoiled past recognition (a heavy edit, frames of other footage)."""
    return np.array([_flip(moving[2 * k], 24, rng) if keep else
                     rng.integers(0, 2**64, size=WORDS, dtype=np.uint64)
                     for k, keep in enumerate(kept)])


def test_a_long_copy_is_listed_on_its_recognisable_frames_however_few_their_share(tmp_path):
    rng = np.random.default_rng(5)
    moving = rng.integers(0, 2**64, size=(480, WORDS), dtype=np.uint64)  # 60 s
    with Index(tmp_path / "index.db", default_scheme="pdq-256-v1") as index:
        video = _add(index, "long", moving)
        times = np.arange(200) * 0.25
        # 45 frames of 200, spread over the whole 50 s: 10 s worth of evidence.
        kept = np.zeros(len(times), bool)
        kept[rng.choice(len(times), 45, replace=False)] = True
        assert _listed(index, _spoiled_copy(moving, kept, rng), times) == [video]
        # A few coincidences over as long a stretch are not.
        kept[:] = False
        kept[np.linspace(0, len(times) - 1, 8).astype(int)] = True
        assert _listed(index, _spoiled_copy(moving, kept, rng), times) == []


@pytest.fixture()
def framed(tmp_path):
    """10 s of moving footage indexed with its centre, and the footage and centre
    hashes at 1.0, 1.25, ... 4.75 s: what a 4 s query of it shows."""
    rng = np.random.default_rng(11)
    footage = rng.integers(0, 2**64, size=(80, WORDS), dtype=np.uint64)
    centre = rng.integers(0, 2**64, size=(80, WORDS), dtype=np.uint64)
    index = Index(tmp_path / "index.db", default_scheme="pdq-256-v1")
    _add(index, "framed", footage, centre)
    yield index, footage[8::2][:16], centre[8::2][:16], rng
    index.close()


QUERY_TIMES = np.arange(16) * 0.25


def test_centre_views_meet_only_centre_hashes(framed):
    """A query's zoomed centre and an indexed footage hash are different framings:
    equal hashes across the two are a coincidence of framing, not a match."""
    index, footage, centre, rng = framed
    zoom = View("zoom-0.790", FULL.centre(0.76), False, scale=0.79)

    # The plain view, tried first, shows other footage.
    other = rng.integers(0, 2**64, size=(len(QUERY_TIMES), WORDS), dtype=np.uint64)

    def matches(view: View, rows: np.ndarray) -> list:
        query = QueryFrames(QUERY_TIMES, [(View("content", FULL, False), other), (view, rows)], 4.0)
        return find_matches(query, FrameSearch.open(index), index.durations, _params())

    near = np.array([_flip(row, 6, rng) for row in centre])
    found = matches(zoom, near)
    assert [m.view.name for m in found] == ["zoom-0.790"]
    assert found[0].reference_segment[0] == pytest.approx(1.0, abs=0.2)
    # The same zoomed view near the footage hashes, or a plain view near the
    # centre hashes, finds nothing.
    across = np.array([_flip(row, 6, rng) for row in footage])
    assert matches(zoom, across) == []
    assert matches(View("content-mirrored", FULL, True), near) == []


def test_edges_are_said_to_differ_only_where_the_whole_footage_matched_less(framed):
    """A mirrored copy met on its mirrored centre is measured against the mirrored
    whole footage: its edges are unchanged. A copy whose edges are covered (the whole
    footage matched nowhere) has them said to differ."""
    index, footage, centre, rng = framed
    # The centre matches closer than the whole footage, so the centre view wins.
    whole = np.array([_flip(row, 12, rng) for row in footage])
    middle = np.array([_flip(row, 2, rng) for row in centre])
    unrelated = rng.integers(0, 2**64, size=(len(QUERY_TIMES), WORDS), dtype=np.uint64)

    def relations(mirrored_whole: np.ndarray) -> list[str]:
        query = QueryFrames(QUERY_TIMES, [
            (View("content", FULL, False), unrelated),
            (View("content-mirrored", FULL, True), mirrored_whole),
            (View("centre-mirrored", FULL.centre(0.6), True, scale=1.0), middle)], 4.0)
        [found] = find_matches(query, FrameSearch.open(index), index.durations, _params())
        assert found.view.name == "centre-mirrored"
        return [r.kind for r in describe_relations(
            found, same_file=False, query_shape=(640, 360), reference_shape=(640, 360))]

    # Met on the centre at its own framing: neither the edges nor a crop to report.
    assert "edges_differ" not in relations(whole) and "cropped" not in relations(whole)
    assert "edges_differ" in relations(unrelated)


def test_a_turned_copy_met_on_its_centre_is_rotated_not_cropped(framed):
    """A copy turned inside its frame lost its corners, so its centre matches best:
    the turn is the edit to report, not a crop or changed edges."""
    index, _, centre, rng = framed
    rotation = Rotation(5.0, 16 / 9)
    unrelated = rng.integers(0, 2**64, size=(len(QUERY_TIMES), WORDS), dtype=np.uint64)
    query = QueryFrames(QUERY_TIMES, [
        (View("content", FULL, False), unrelated),
        (View("rotated-centre", FULL.centre(0.6), False, rotation=rotation, scale=1.0),
         np.array([_flip(row, 4, rng) for row in centre]))], 4.0)
    [found] = find_matches(query, FrameSearch.open(index), index.durations, _params())
    relations = {r.kind: r.value for r in describe_relations(
        found, same_file=False, query_shape=(640, 360), reference_shape=(640, 360))}
    assert relations["rotated"] == 5.0
    assert "edges_differ" not in relations and "cropped" not in relations, relations


def test_an_inset_met_on_its_centre_is_inside_other_footage_not_cropped(framed):
    """The rest of the picture around an inset is other footage: it is not an edge
    of this footage that changed, nor a crop of it."""
    index, _, centre, rng = framed
    inset = FULL.centre(0.35)
    unrelated = rng.integers(0, 2**64, size=(len(QUERY_TIMES), WORDS), dtype=np.uint64)
    query = QueryFrames(QUERY_TIMES, [
        (View("content", FULL, False), unrelated),
        (View("region-1-centre", inset.centre(0.6), False, scale=1.0, inset=inset),
         np.array([_flip(row, 8, rng) for row in centre]))], 4.0)
    [found] = find_matches(query, FrameSearch.open(index), index.durations, _params())
    relations = {r.kind: r.value for r in describe_relations(
        found, same_file=False, query_shape=(640, 360), reference_shape=(640, 360))}
    assert "edges_differ" not in relations and "cropped" not in relations, relations
    # The inset's share of the picture, not its centre's.
    assert relations["inside_other_footage"] == pytest.approx(inset.area)


@pytest.mark.parametrize("hashed, said", [
    (None, "no frame hash met"),
    (HashAlignment(1.0, 2.0, False, (0.0, 4.0)),
     "frame hashes met too weakly to list it, at the alignment the keypoints keep")])
def test_a_keypoint_match_says_whether_the_frame_hashes_agreed(hashed, said):
    """A desk weighing a keypoint match should know if it stands alone or on the
    alignment a weak hash match found too (then it needed one frame fewer, and
    the footage shared runs over the frames either met)."""
    found = FeatureMatch(3, [FeaturePair(t, 2.0 + t, 40, 1.0) for t in (0.0, 0.5, 1.0)],
                         1.0, 2.0, False, hashed=hashed)
    m = keypoint_match(found, query_duration_s=5.0, query_step_s=0.25, query_aspect=16 / 9,
                       reference_duration_s=10.0, reference_aspect=16 / 9)
    assert m.score == (0.3 if hashed is None else 0.4)
    assert m.query_segment == ((0.0, 1.25) if hashed is None else (0.0, 4.0))
    assert m.reference_segment == ((2.0, 3.25) if hashed is None else (2.0, 6.0))
    [reencoded] = [r for r in describe_relations(m, same_file=False, query_shape=(640, 360),
                                                 reference_shape=(640, 360))
                   if r.kind == "reencoded"]
    assert said in reencoded.evidence
