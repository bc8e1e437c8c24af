"""The SQLite index: lossless hashes, sightings, migrations, atomic writes."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from provenance.errors import IndexDatabaseError
from provenance.features import FEATURES_VERSION, FrameFeatures
from provenance.fetch import FetchedMedia, SourceMetadata, UploadTime
from provenance.hashing import FrameHash
from provenance.index import (SCHEMA_VERSION, VIEW_CENTRE, VIEW_FOOTAGE, VIEW_STRIP,
                              VIEW_WHOLE_CENTRE, VIEW_WHOLE_PICTURE, Index)


def _media(tmp_path: Path, sha: str, source: str) -> FetchedMedia:
    meta = SourceMetadata(source=source, retrieved_at="2026-01-01T00:00:00Z", uploader="someone",
                          upload_time=UploadTime("2025-12-31", "day", "platform"))
    return FetchedMedia(tmp_path / "clip.mp4", sha, 1234, meta)


def _add(index: Index, media: FetchedMedia, hashes: np.ndarray) -> int:
    n = len(hashes)
    return index.add_video(media, duration_s=float(n), width=640, height=360, container_tags={},
                           times=[float(i) for i in range(n)], details=[50.0] * n, hashes=hashes,
                           sampling=2)


@pytest.mark.parametrize("scheme,words", [("phash-64-v1", 1), ("pdq-256-v1", 4)])
def test_hashes_with_the_top_bit_set_round_trip_exactly(tmp_path, scheme, words):
    top = np.uint64(1 << 63)
    hashes = np.array([[top | np.uint64(5)] * words, [np.uint64(2**64 - 1)] * words,
                       [np.uint64(0)] * words], dtype=np.uint64)
    with Index(tmp_path / "i.db", default_scheme=scheme) as index:
        video_id = _add(index, _media(tmp_path, "a" * 64, "/x.mp4"), hashes)
    with Index(tmp_path / "i.db") as index:  # reopened: nothing cached in memory
        back = index.frames_of(video_id).hashes
        assert back.dtype == np.uint64
        assert np.array_equal(back, hashes)
        text = str(FrameHash.from_words(index.scheme, back[1]))
        assert FrameHash.parse(text).value == 2 ** (64 * words) - 1
        stored = index.db.execute("SELECT h0 FROM frames WHERE seq = 0").fetchone()[0]
        assert stored == -(2**63) + 5  # SQLite's signed integer, two's complement


def test_same_content_is_one_video_with_many_sightings(tmp_path):
    with Index(tmp_path / "i.db") as index:
        video_id = _add(index, _media(tmp_path, "b" * 64, "https://a.example/v/1"),
                        np.zeros((3, 1), np.uint64))
        assert index.video_id_for("b" * 64) == video_id
        assert index.add_sighting(video_id, _media(tmp_path, "b" * 64, "https://b.example/x").metadata)
        assert not index.add_sighting(video_id, _media(tmp_path, "b" * 64, "https://b.example/x").metadata)
        record = index.video(video_id)
        assert [s.metadata.source for s in record.sightings] == ["https://a.example/v/1",
                                                                 "https://b.example/x"]
        assert record.sightings[0].metadata.upload_time == UploadTime("2025-12-31", "day", "platform")
        assert index.stats()["videos"] == 1 and index.stats()["sightings"] == 2


def test_a_failed_write_leaves_no_half_video(tmp_path):
    with Index(tmp_path / "i.db") as index:
        bad = np.zeros((3, 1), np.uint64)
        with pytest.raises(ValueError):
            index.add_video(_media(tmp_path, "c" * 64, "/c.mp4"), duration_s=1.0, width=1,
                            height=1, container_tags={}, sampling=2, times=[0.0, 1.0],
                            details=[1.0] * 3, hashes=bad)
        with pytest.raises(IndexDatabaseError):  # the sighting insert fails inside the transaction
            index.add_video(_media(tmp_path, "c" * 64, None), duration_s=1.0, width=1, height=1,
                            container_tags={}, sampling=2, times=[0.0], details=[1.0],
                            hashes=bad[:1])
        assert index.stats()["videos"] == 0 and index.stats()["keyframes"] == 0


def test_hashes_of_another_width_are_refused_not_cut(tmp_path):
    with Index(tmp_path / "i.db") as index:  # 64-bit pHash
        with pytest.raises(ValueError, match="phash-64-v1"):
            _add(index, _media(tmp_path, "d" * 64, "/d.mp4"), np.ones((3, 4), np.uint64))
        assert index.stats()["videos"] == 0


def test_each_view_of_a_keyframe_is_stored_and_told_apart(tmp_path):
    footage, whole, centre, whole_centre, strip = (np.full((3, 1), v, np.uint64)
                                                   for v in (1, 2, 3, 4, 5))
    with Index(tmp_path / "i.db") as index:
        video_id = index.add_video(
            _media(tmp_path, "e" * 64, "/e.mp4"), duration_s=3.0, width=640, height=360,
            container_tags={}, sampling=2, times=[0.0, 1.0, 2.0], details=[50.0] * 3,
            hashes=footage, views={VIEW_WHOLE_PICTURE: whole, VIEW_CENTRE: centre,
                                   VIEW_WHOLE_CENTRE: whole_centre, VIEW_STRIP: strip})
        frames = index.frame_arrays()
        by_view = {int(v): frames.hashes[frames.views == v, 0].tolist() for v in set(frames.views)}
        assert by_view == {VIEW_FOOTAGE: [1] * 3, VIEW_WHOLE_PICTURE: [2] * 3,
                           VIEW_CENTRE: [3] * 3, VIEW_WHOLE_CENTRE: [4] * 3, VIEW_STRIP: [5] * 3}
        assert frames.times[frames.views == VIEW_CENTRE].tolist() == [0.0, 1.0, 2.0]
        # A keyframe is counted once, whatever views it is stored in.
        assert index.video(video_id).keyframe_count == 3 and index.stats()["keyframes"] == 3
        with pytest.raises(ValueError, match="one hash per keyframe"):
            index.add_video(
                _media(tmp_path, "f" * 64, "/f.mp4"), duration_s=3.0, width=640, height=360,
                container_tags={}, sampling=2, times=[0.0, 1.0, 2.0], details=[50.0] * 3,
                hashes=footage, views={VIEW_CENTRE: centre[:2]})
        assert index.stats()["videos"] == 1


def test_wal_mode_and_schema_version(tmp_path):
    with Index(tmp_path / "i.db") as index:
        assert index.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Index(tmp_path / "i.db") as index:  # reopening migrates nothing twice
        assert index.stats()["schema_version"] == SCHEMA_VERSION


def test_an_index_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "i.db"
    Index(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(IndexDatabaseError, match="newer than this provenance understands"):
        Index(path)
    assert path.read_bytes() == before


def test_a_corrupt_file_is_reported_as_such(tmp_path):
    path = tmp_path / "i.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexDatabaseError, match="corrupt or not a provenance index"):
        Index(path)


def test_frame_hash_text_form_is_lossless_and_typed():
    h = FrameHash("pdq", 256, 1, (1 << 255) | 7)
    assert FrameHash.parse(str(h)) == h
    assert str(h).startswith("pdq-256-v1:8000")
    with pytest.raises(ValueError):
        h.distance(FrameHash("phash", 64, 1, 7))
    assert h.distance(FrameHash("pdq", 256, 1, 7)) == 1


def test_a_video_whose_container_states_no_duration_lasts_to_its_last_keyframe(tmp_path):
    # A match's segment is clamped to the duration and its coverage taken of it:
    # none at all claimed "0 % of it" and left the segment running past the end.
    with Index(tmp_path / "i.db", default_scheme="pdq-256-v1") as index:
        stated = _add(index, _media(tmp_path, "a" * 64, "/a.mp4"), np.ones((4, 4), np.uint64))
        unstated = index.add_video(
            _media(tmp_path, "b" * 64, "/b.mp4"), duration_s=None, width=640, height=360,
            container_tags={}, times=[0.0, 0.5, 2.25], details=[50.0] * 3,
            hashes=np.ones((3, 4), np.uint64), sampling=2)
        assert index.durations([stated, unstated]) == {stated: 4.0, unstated: 2.25}


def test_keypoints_round_trip_exactly_and_go_with_their_video(tmp_path):
    rng = np.random.default_rng(7)
    described = [FrameFeatures(float(t), rng.random((n, 2), np.float32) * 455,
                               rng.integers(0, 256, (n, 128), np.uint8))
                 for t, n in ((0.0, 9), (1.0, 400))]
    with Index(tmp_path / "i.db") as index:
        media = _media(tmp_path, "d" * 64, "/d.mp4")
        video_id = index.add_video(media, duration_s=2.0, width=640, height=360,
                                   container_tags={}, sampling=2, times=[0.0, 1.0],
                                   details=[50.0] * 2, hashes=np.zeros((2, 1), np.uint64),
                                   features=described)
    with Index(tmp_path / "i.db") as index:  # reopened: read back from SQLite
        back = list(index.features())
        assert [(v, f.t) for v, f in back] == [(video_id, 0.0), (video_id, 1.0)]
        for (_, got), want in zip(back, described):
            assert got.points.dtype == np.float32 and np.array_equal(got.points, want.points)
            assert got.descriptors.dtype == np.uint8
            assert np.array_equal(got.descriptors, want.descriptors)
        assert index.db.execute("SELECT features_version FROM videos").fetchone()[0] == \
            FEATURES_VERSION
        assert index.remove(video_id)
        assert list(index.features()) == []


def test_an_index_from_before_keypoints_keeps_its_videos_and_counts_them_to_rehash(tmp_path):
    path = tmp_path / "i.db"
    with Index(path) as index:
        video_id = _add(index, _media(tmp_path, "e" * 64, "/e.mp4"), np.zeros((3, 1), np.uint64))
    # Made to look as schema 6 left it: no features table, no version column.
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE features; ALTER TABLE videos DROP COLUMN features_version;"
                     f"PRAGMA user_version = {SCHEMA_VERSION - 1};")
    db.close()
    with Index(path) as index:
        assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert index.video(video_id).keyframe_count == 3
        assert index.db.execute("SELECT features_version FROM videos").fetchone()[0] == 0
        assert list(index.features()) == []
