"""The on-disk search structure: exactly the brute-force scan's results, kept current
with SQLite through adds and removes, rebuilt when missing, damaged or stale, and
still correct where it cannot be written."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from provenance.fetch import FetchedMedia, SourceMetadata
from provenance.frame_search import FrameSearch, Segment
from provenance.hamming import HammingSearch
from provenance.index import CENTRE_VIEWS, Index

RADIUS = {"pdq-256-v1": 31, "phash-64-v1": 10}


def _videos(rng: np.random.Generator, count: int, frames: int, words: int) -> list[np.ndarray]:
    """Videos whose frames drift a few bits from one to the next, as real footage does."""
    videos = []
    for _ in range(count):
        current = rng.integers(0, 2**64, size=words, dtype=np.uint64)
        rows = []
        for _ in range(frames):
            bit = int(rng.integers(0, 64 * words))
            current = current.copy()
            current[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
            rows.append(current)
        videos.append(np.array(rows))
    return videos


def _near(rng: np.random.Generator, hashes: np.ndarray, count: int, max_flips: int) -> np.ndarray:
    """Queries at every distance from 0 to max_flips of indexed hashes, plus strangers."""
    words = hashes.shape[1]
    picked = hashes[rng.integers(0, len(hashes), count)].copy()
    for row, flips in zip(picked, rng.integers(0, max_flips + 1, count)):
        for bit in rng.choice(64 * words, int(flips), replace=False):
            row[bit // 64] ^= np.uint64(1) << np.uint64(int(bit) % 64)
    strangers = rng.integers(0, 2**64, size=(count // 4, words), dtype=np.uint64)
    return np.concatenate([picked, strangers, picked[:5]])  # repeated rows too


def _triples(q, video_ids, distances) -> list[tuple[int, int, int]]:
    return sorted(zip(np.asarray(q).tolist(), np.asarray(video_ids).tolist(),
                      np.asarray(distances).tolist()))


def _brute(index: Index, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    frames = index.frame_arrays()
    q, r, d = HammingSearch(frames.hashes).range_search(queries, radius)
    return _triples(q, frames.video_ids[r], d)


def _found(index: Index, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    found = FrameSearch.open(index).range_search(queries, radius)
    return _triples(found.query_rows, found.video_ids, found.distances)


def _add(index: Index, rng: np.random.Generator, hashes: np.ndarray) -> int:
    sha = "".join(rng.choice(list("0123456789abcdef"), 64))
    media = FetchedMedia(Path("/clips/x.mp4"), sha, 1,
                         SourceMetadata(source=f"/clips/{sha}.mp4", retrieved_at="2026-01-01T00:00:00Z"))
    n = len(hashes)
    return index.add_video(media, duration_s=n * 0.25, width=640, height=360, container_tags={},
                           times=[i * 0.25 for i in range(n)], details=[40.0] * n, hashes=hashes,
                           sampling=2)


@pytest.mark.parametrize("words,radius", [(4, 31), (1, 10), (4, 0), (4, 40)])
def test_segments_find_exactly_what_a_full_scan_finds(words, radius):
    rng = np.random.default_rng(words * 100 + radius)
    hashes = np.concatenate(_videos(rng, 60, 50, words))
    video_ids = np.repeat(np.arange(60), 50)
    times = np.tile(np.arange(50) * 0.25, 60)
    views = np.tile(np.arange(50) % 3, 60).astype(np.int8)
    queries = _near(rng, hashes, 200, max_flips=radius + 8)
    # Laid out for another radius than the one searched: still exact.
    search = FrameSearch([Segment.build(hashes[:1000], video_ids[:1000], times[:1000],
                                        views[:1000], 31),
                          Segment.build(hashes[1000:], video_ids[1000:], times[1000:],
                                        views[1000:], 10)])
    found = search.range_search(queries, radius)
    q, r, d = HammingSearch(hashes).range_search(queries, radius)
    assert _triples(found.query_rows, found.video_ids, found.distances) == \
        _triples(q, video_ids[r], d)
    assert len(d) > (10 if radius == 0 else 200)  # near copies found, not only exact ones
    # Each hit carries its frame's own time and stored view.
    assert np.allclose(np.sort(found.times), np.sort(times[r]))
    assert sorted(zip(found.query_rows.tolist(), found.video_ids.tolist(), found.times.tolist(),
                      found.views.tolist())) == \
        sorted(zip(q.tolist(), video_ids[r].tolist(), times[r].astype(np.float32).tolist(),
                   views[r].tolist()))
    # Split by class, each query hash twice (once as a centre view, once not): the
    # full scan's hits of each row's own class, no more, no fewer.
    twice = np.concatenate([queries, queries])
    centre = np.concatenate([rng.random(len(queries)) < 0.5] * 2)
    centre[len(queries):] ^= True
    found = search.range_search(twice, radius, centre=centre)
    q, r, d = HammingSearch(hashes).range_search(twice, radius)
    same = np.isin(views[r], CENTRE_VIEWS) == centre[q]
    assert _triples(found.query_rows, found.video_ids, found.distances) == \
        _triples(q[same], video_ids[r[same]], d[same])
    assert 0 < same.sum() < len(same)


@pytest.mark.parametrize("scheme", ["pdq-256-v1", "phash-64-v1"])
def test_the_structure_follows_adds_and_removes(tmp_path, scheme):
    rng = np.random.default_rng(3)
    words = 4 if scheme.startswith("pdq") else 1
    radius = RADIUS[scheme]
    videos = _videos(rng, 40, 30, words)
    queries = _near(rng, np.concatenate(videos), 150, max_flips=radius + 6)
    with Index(tmp_path / "i.db", default_scheme=scheme) as index:
        ids = [_add(index, rng, v) for v in videos[:10]]
        assert _found(index, queries, radius) == _brute(index, queries, radius)
        for video in videos[10:]:  # one at a time, as a feed batch adds them
            ids.append(_add(index, rng, video))
            FrameSearch.open(index)
        manifest = json.loads((tmp_path / "i.db.search" / "manifest.json").read_text())
        assert manifest["generation"] == index.generation()
        # Merged as it grew: a handful of segments, not one per video.
        assert 1 <= len(manifest["segments"]) <= 6
        assert _found(index, queries, radius) == _brute(index, queries, radius)
        assert index.remove(ids[-1]) and index.remove(ids[3])
        # SQLite may hand the last id out again: the new video must be found, the old not.
        reused = _add(index, rng, videos[3])
        after = _found(index, queries, radius)
        assert after == _brute(index, queries, radius)
        assert ids[3] not in {v for _, v, _ in after} and reused in {v for _, v, _ in after}
        # A video hashed again (rehash) is found by its new hashes only.
        sha = index.video(ids[5]).sha256
        assert not index.replace_frames(ids[5], "0" * 64, times=[i * 0.25 for i in range(30)],
                                        details=[40.0] * 30, hashes=videos[20].copy(), sampling=2)
        assert index.replace_frames(ids[5], sha, times=[i * 0.25 for i in range(30)],
                                    details=[40.0] * 30, hashes=videos[20].copy(), sampling=2)
        after = _found(index, queries, radius)
        assert after == _brute(index, queries, radius)
        assert {q for q, v, _ in after if v == ids[5]} == {q for q, v, _ in after if v == ids[20]}
        segments = sorted(p.name for p in (tmp_path / "i.db.search").iterdir()
                          if p.name.startswith("segment-"))
        assert segments == sorted(json.loads(
            (tmp_path / "i.db.search" / "manifest.json").read_text())["segments"])


def test_missing_damaged_or_foreign_structures_are_rebuilt(tmp_path):
    rng = np.random.default_rng(5)
    videos = _videos(rng, 12, 40, 4)
    queries = _near(rng, np.concatenate(videos), 100, max_flips=36)
    with Index(tmp_path / "i.db", default_scheme="pdq-256-v1") as index:
        for video in videos:
            _add(index, rng, video)
        expected = _brute(index, queries, 31)
        folder = tmp_path / "i.db.search"
        assert _found(index, queries, 31) == expected
        manifest = folder / "manifest.json"
        manifest.write_text("{not json")
        assert _found(index, queries, 31) == expected
        for segment in folder.glob("segment-*"):
            (segment / "postings.npy").write_bytes(b"\x93NUMPY garbage")
        assert _found(index, queries, 31) == expected
        # A structure left by another index (the .db was replaced): not trusted.
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "index_uuid": "0" * 32}))
        assert _found(index, queries, 31) == expected
        assert json.loads(manifest.read_text())["index_uuid"] == index.uuid
        # Ahead of the index (an older copy of the .db restored): rebuilt too.
        manifest.write_text(json.dumps({**data, "generation": index.generation() + 5}))
        assert _found(index, queries, 31) == expected


def test_an_unwritable_location_still_gives_exact_results(tmp_path):
    rng = np.random.default_rng(9)
    videos = _videos(rng, 8, 40, 4)
    queries = _near(rng, np.concatenate(videos), 80, max_flips=36)
    with Index(tmp_path / "i.db", default_scheme="pdq-256-v1") as index:
        for video in videos[:4]:
            _add(index, rng, video)
        assert _found(index, queries, 31) == _brute(index, queries, 31)
        # The folder cannot be written: its manifest is left behind, the rest built in memory.
        (tmp_path / "i.db.search" / "lock").unlink()
        (tmp_path / "i.db.search" / "lock").mkdir()
        for video in videos[4:]:
            _add(index, rng, video)
        assert _found(index, queries, 31) == _brute(index, queries, 31)


def test_a_db_restored_from_a_backup_and_changed_since_is_not_served_stale_rows(tmp_path):
    # The README says to back up the .db alone: after a restore the old structure
    # is still beside it, and once new adds bring the generation back to its
    # manifest's, that generation names other changes.
    rng = np.random.default_rng(11)
    first, lost, later = _videos(rng, 3, 30, 4)
    db = tmp_path / "i.db"
    with Index(db, default_scheme="pdq-256-v1") as index:
        _add(index, rng, first)
        with sqlite3.connect(tmp_path / "backup.db") as backup:
            index.db.backup(backup)
        lost_id = _add(index, rng, lost)
        FrameSearch.open(index)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", db)
    with Index(db) as index:
        later_id = _add(index, rng, later)
        assert later_id == lost_id  # SQLite hands the id out again
        queries = np.concatenate([lost, later])
        assert _found(index, queries, 31) == _brute(index, queries, 31)
        assert {q for q, _, _ in _found(index, queries, 31)} == set(range(30, 60))
