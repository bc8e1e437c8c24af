"""The on-disk search structure over the indexed frame hashes (part of the index stage).

Contract: ``FrameSearch.open(index)`` returns a searcher that is current with the
SQLite index; ``range_search(queries, radius)`` returns every (query row, video
id, frame time, stored view, distance) with distance <= radius: exactly what a
brute-force scan of every stored hash returns (``hamming.HammingSearch`` is that scan, and
the tests hold the two equal). With ``centre`` (one flag per query row), a row
flagged meets only the stored centre hashes (``index.CENTRE_VIEWS``) and the
others only the rest: what matching uses, found without comparing the other half.
SQLite stays the source of truth; this structure is derived from it and rebuilt
from it when missing, damaged or stale.

Why a multi-index hash (Norouzi et al., "Fast search in Hamming space with
multi-index hashing"): split the hash into m chunks; two hashes within r bits
differ by at most floor(r/m) bits in at least one chunk (pigeonhole), so probing
each chunk's table with every key within floor(r/m) bits of the query's chunk
finds every match, and only those candidates are compared on all bits. Chunks
widen with the segment (16 bits up to a million rows, 21-22 bits beyond: PDQ at
r=31 then probes 12 tables with ~250 keys each and checks ~10,000 candidates per
query hash at 10 million rows), so the work grows far slower than the index.

Layout, in ``<db>.search/``: immutable segments (numpy files opened memory-mapped,
so opening costs milliseconds whatever the size) and ``manifest.json`` naming
the segments and the last change of the index's ``frame_log`` they include. New
videos become a new small segment; segments merge when the newer one reaches
half the size of the one before (as in a log-structured merge tree), so there
are O(log n) segments and each row is rewritten O(log n) times. Removals (a
rehash is a removal and an add) rewrite the segments that hold those videos,
once per catch-up however many there were. Writers serialise on a lock file;
readers of a current manifest never lock (files are replaced by rename); a reader
that raced a merge, or finds the structure behind, takes the lock and catches up. If the folder cannot be written
(read-only or full disk) the missing part is built in memory for this run.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import SCHEME_RADIUS
from .index import CENTRE_VIEWS, Index

MIN_CHUNK_BITS = 16
MAX_CHUNK_BITS = 22  # 2**22 offsets per table: 16 MB
FORMAT_VERSION = 3  # 3: the stored view of each row
# Bounds the candidate arrays of one block of queries (~40 bytes each).
_CANDIDATES_PER_BLOCK = 500_000
SEARCH_THREADS = 2


@dataclass(frozen=True)
class Found:
    query_rows: np.ndarray  # int64, row of the query hash
    video_ids: np.ndarray  # int64
    times: np.ndarray  # float64 seconds since the indexed video's first frame
    views: np.ndarray  # int8, index.VIEW_*: what the indexed hash shows
    distances: np.ndarray  # int32


# The per-row columns a segment shares with index.FrameArrays, in Segment.build's order.
_ROWS = ("hashes", "video_ids", "times", "views")
_NO_HITS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))


def _empty() -> Found:
    return Found(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8),
                 np.zeros(0, np.int32))


@functools.cache
def probe_masks(width: int, max_flips: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``max_flips`` bits set."""
    masks = [0]
    for flips in range(1, max_flips + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(width), flips)]
    return np.array(masks, dtype=np.uint64)


def plan_chunks(bits: int, rows: int, radius: int) -> list[int]:
    """Chunk widths that minimise the expected work of a search at ``radius``:
    keys probed plus candidates checked. Wider chunks mean fewer candidates and
    more keys; a table of 2**width offsets must stay small next to the segment,
    so widths grow with log2(rows) (from 16 up to MAX_CHUNK_BITS): the work per
    query then grows well below linearly with the index."""
    widest = int(min(MAX_CHUNK_BITS, max(MIN_CHUNK_BITS, np.ceil(np.log2(max(rows, 2))))))
    best, best_cost = [], float("inf")
    for tables in range(-(-bits // widest), bits // 8 + 1):
        widths = [bits // tables + (1 if i < bits % tables else 0) for i in range(tables)]
        flips = radius // tables
        keys = [sum(comb(w, k) for k in range(flips + 1)) for w in widths]
        cost = sum(k * (1 + rows / 2**w) for k, w in zip(keys, widths))
        if cost < best_cost:
            best, best_cost = widths, cost
    return best


def chunk_values(hashes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(n, tables) uint64: consecutive bit fields of each hash, ``widths`` long."""
    out = np.empty((len(hashes), len(widths)), np.uint64)
    position = 0
    for table, width in enumerate(int(w) for w in widths):
        word, shift = divmod(position, 64)
        value = hashes[:, word] >> np.uint64(shift)
        if shift + width > 64:  # the field runs on into the next word
            value |= hashes[:, word + 1] << np.uint64(64 - shift)
        out[:, table] = value & np.uint64((1 << width) - 1)
        position += width
    return out


class Segment:
    """n rows: hashes, video ids, times, views and one sorted posting table per chunk."""

    _FILES = ("hashes", "video_ids", "times", "views", "widths", "offsets", "postings")

    def __init__(self, hashes: np.ndarray, video_ids: np.ndarray, times: np.ndarray,
                 views: np.ndarray, widths: np.ndarray, offsets: np.ndarray,
                 postings: np.ndarray) -> None:
        self.hashes, self.video_ids, self.times, self.views = hashes, video_ids, times, views
        self.widths, self.offsets, self.postings = widths, offsets, postings
        # Where each table's 2**width + 1 offsets start in the flat offsets array.
        sizes = [(1 << int(w)) + 1 for w in widths]
        self.table_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.video_ids)

    @classmethod
    def build(cls, hashes: np.ndarray, video_ids: np.ndarray, times: np.ndarray,
              views: np.ndarray, radius: int) -> "Segment":
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        if len(hashes) >= 2**32 or (len(video_ids) and int(np.max(video_ids)) >= 2**31):
            raise ValueError("a segment holds under 2**32 rows of video ids under 2**31")
        widths = np.array(plan_chunks(64 * hashes.shape[1], len(hashes), radius), np.int64)
        values = chunk_values(hashes, widths)
        offsets, postings = [], np.empty((len(widths), len(hashes)), np.uint32)
        for table, width in enumerate(int(w) for w in widths):
            keys = values[:, table]
            postings[table] = np.argsort(keys)
            counts = np.bincount(keys.astype(np.int64), minlength=1 << width)
            offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.uint32))
        return cls(hashes, np.ascontiguousarray(video_ids, np.int32),
                   np.ascontiguousarray(times, np.float32), np.ascontiguousarray(views, np.int8),
                   widths,
                   np.concatenate(offsets), postings)

    def save(self, folder: Path) -> None:
        for name in self._FILES:
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> "Segment":
        return cls(*(np.load(folder / f"{name}.npy", mmap_mode="r") for name in cls._FILES))

    def without(self, video_ids: list[int], radius: int) -> "Segment":
        """This segment less the rows of ``video_ids``: itself if it holds none."""
        keep = ~np.isin(np.asarray(self.video_ids), video_ids)
        if keep.all():
            return self
        return Segment.build(*(np.asarray(getattr(self, column))[keep] for column in _ROWS),
                             radius)

    def search(self, queries: np.ndarray, radius: int, centre: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query rows, segment rows, distances) of every row within ``radius``
        (with ``centre``, of the rows of the query row's class only)."""
        n = len(self)
        if n == 0 or len(queries) == 0:
            return _NO_HITS
        widths = [int(w) for w in self.widths]
        flips = radius // len(widths)  # pigeonhole: some chunk is this close
        masks = [probe_masks(w, flips) for w in widths]
        postings = self.postings.reshape(-1)
        expected = max(1.0, sum(len(m) * (1 + n / 2**w) for m, w in zip(masks, widths)))
        step = max(1, int(_CANDIDATES_PER_BLOCK / expected))
        found_q, found_r = [], []
        for first in range(0, len(queries), step):
            block = queries[first:first + step]
            values = chunk_values(block, self.widths)
            # Flat offset positions of every probed key: (queries, keys of all tables).
            keys = np.concatenate([(values[:, [t]] ^ masks[t][None, :]).astype(np.int64)
                                   + self.table_starts[t] for t in range(len(widths))], axis=1)
            starts = self.offsets[keys].astype(np.int64)
            lengths = (self.offsets[keys + 1].astype(np.int64) - starts).ravel()
            # Each table's postings follow the previous table's in the flat array.
            table_of_key = np.concatenate([np.full(len(m), t) for t, m in enumerate(masks)])
            starts = (starts + table_of_key[None, :] * n).ravel()
            total = int(lengths.sum())
            if total == 0:
                continue
            owner = np.repeat(np.repeat(np.arange(len(block)), keys.shape[1]), lengths)
            # Positions run start, start+1, ... within each probed bucket.
            run_start = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
            rows = postings[run_start + np.arange(total)].astype(np.int64)
            if centre is not None:
                # Most query hashes are centre views (the zoom ladder): leaving the
                # other class's candidates out before comparing any cut a search at
                # 10 M rows to a third (8.6 s -> 2.9 s on one thread).
                same = np.isin(self.views[rows], CENTRE_VIEWS) == centre[first:first + step][owner]
                rows, owner = rows[same], owner[same]
            dist = np.bitwise_count(self.hashes[rows] ^ block[owner]).sum(axis=1, dtype=np.int32)
            hit = dist <= radius
            # A row found through several chunks is reported once.
            pairs = np.unique(np.stack([owner[hit], rows[hit]]), axis=1)
            found_q.append(pairs[0] + first)
            found_r.append(pairs[1])
        if not found_q:
            return _NO_HITS
        q, r = np.concatenate(found_q), np.concatenate(found_r)
        return q, r, np.bitwise_count(self.hashes[r] ^ queries[q]).sum(axis=1, dtype=np.int32)


class FrameSearch:
    """Every indexed hash, searchable; see the module's contract."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = [s for s in segments if len(s)]

    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    def range_search(self, queries: np.ndarray, radius: int,
                     centre: np.ndarray | None = None) -> Found:
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        if len(queries) == 0 or not self.segments:
            return _empty()
        # Identical query hashes (still footage) are searched once (per class).
        keyed = queries if centre is None else np.column_stack(
            [queries, np.asarray(centre, dtype=np.uint64)])
        unique, inverse = np.unique(keyed, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        unique_centre = None if centre is None else unique[:, -1].astype(bool)
        unique = np.ascontiguousarray(unique[:, :queries.shape[1]])
        # numpy lets go of the GIL while it gathers and counts: one thread per core.
        halves = np.array_split(np.arange(len(unique)), SEARCH_THREADS)

        def search_part(rows: np.ndarray) -> list[tuple]:
            found = []
            for segment in self.segments:
                q, r, d = segment.search(unique[rows], radius, None if unique_centre is None
                                         else unique_centre[rows])
                found.append((rows[q], np.asarray(segment.video_ids)[r].astype(np.int64),
                              np.asarray(segment.times)[r].astype(np.float64),
                              np.asarray(segment.views)[r], d))
            return found

        with ThreadPoolExecutor(SEARCH_THREADS) as pool:
            parts = [part for found in pool.map(search_part, halves) for part in found]
        q, vid, t, view, d = (np.concatenate(x) for x in zip(*parts))
        # Fan each unique query hash's hits back out to every query row it stands for.
        order = np.argsort(inverse, kind="stable")
        first = np.searchsorted(inverse[order], np.arange(len(unique)))
        counts = np.bincount(inverse, minlength=len(unique))
        per_hit = counts[q]
        hit = np.repeat(np.arange(len(q)), per_hit)
        offset_in_group = np.arange(len(hit)) - np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
        rows = order[np.repeat(first[q], per_hit) + offset_in_group]
        return Found(rows.astype(np.int64), vid[hit], t[hit], view[hit], d[hit])

    # -- keeping it current with SQLite -------------------------------------------

    @classmethod
    def open(cls, index: Index) -> "FrameSearch":
        """The searcher for ``index``, brought up to date with its latest change."""
        store = _Store(Path(str(index.path) + ".search"), index)
        manifest = store.read_manifest()
        if manifest is not None and (manifest["generation"], manifest["token"]) == index.log_head():
            try:
                return cls([Segment.load(store.folder / name) for name in manifest["segments"]])
            except (OSError, ValueError):
                pass  # a writer merged a segment since we read the manifest, or damage
        return cls(store.sync())


class _Store:
    def __init__(self, folder: Path, index: Index) -> None:
        self.folder, self.index = folder, index
        # Tables are laid out for the scheme's default radius; any other radius
        # searches exactly too, only with more or less work.
        self.radius = SCHEME_RADIUS[index.scheme.split("-")[0]]

    def read_manifest(self) -> dict | None:
        try:
            manifest = json.loads((self.folder / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION
                or manifest.get("index_uuid") != self.index.uuid
                or manifest.get("scheme") != self.index.scheme
                or not isinstance(manifest.get("generation"), int)
                or not isinstance(manifest.get("token", 0), (int, type(None)))
                or not isinstance(manifest.get("segments"), list)):
            return None
        # Written before changes had tokens: their changes have none either.
        manifest.setdefault("token", None)
        return manifest

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(exist_ok=True)
        with open(self.folder / "lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def sync(self) -> list[Segment]:
        try:
            with self._locked():
                return self._sync_on_disk()
        except OSError:
            pass  # read-only folder or full disk: this run builds what it needs in memory
        _, segments, generation = self._current()
        segments, _ = self._replay(segments, generation)
        return segments

    def _current(self) -> tuple[list[str], list[Segment], int]:
        """The manifest's segments and generation; none (rebuild from SQLite) when the
        manifest is missing, foreign, ahead of the index, of another history (the .db
        restored from a backup and changed since) or names a damaged segment."""
        manifest = self.read_manifest()
        if (manifest is None or manifest["generation"] > self.index.generation()
                or manifest["token"] != self.index.log_token(manifest["generation"])):
            return [], [], 0
        try:
            segments = [Segment.load(self.folder / name) for name in manifest["segments"]]
        except (OSError, ValueError):
            return [], [], 0
        return list(manifest["segments"]), segments, manifest["generation"]

    def _sync_on_disk(self) -> list[Segment]:
        names, segments, generation = self._current()
        name_of = {id(segment): name for name, segment in zip(names, segments)}
        segments, generation = self._replay(segments, generation)
        # Segments the replay kept are already on disk; new ones are written.
        live = [name_of.get(id(segment)) or self._write(segment) for segment in segments]
        self._write_manifest(live, generation)
        self._remove_orphans(set(live))  # merged-away segments included
        return segments

    def _replay(self, segments: list[Segment], generation: int) -> tuple[list[Segment], int]:
        """Apply the index's changes after ``generation`` to ``segments``.

        Whatever the changes to a video were (added, removed, its keyframes hashed
        again, its id reused), what it holds now is its rows in SQLite: so every
        changed video's rows are dropped from the segments in one pass (each
        segment rebuilt at most once, not once per change) and the current rows of
        those still indexed are read back as one new segment."""
        changes = self.index.changes_since(generation)
        if not changes:
            return segments, generation
        changed = sorted({video_id for _, video_id, _ in changes})
        removed = {video_id for _, video_id, change in changes if change == "remove"}
        if removed:
            segments = [s.without(changed, self.radius) for s in segments]
        segments = self._flush(segments, changed)
        return [s for s in segments if len(s)], changes[-1][0]

    def _flush(self, segments: list[Segment], video_ids: list[int]) -> list[Segment]:
        if not video_ids:
            return segments
        # SQLite is read a slice of videos at a time; the new rows become one segment.
        parts = [self.index.frames_of_videos(video_ids[start:start + 5_000])
                 for start in range(0, len(video_ids), 5_000)]
        if sum(len(p.hashes) for p in parts) == 0:
            return segments
        new = Segment.build(*(np.concatenate([getattr(p, column) for p in parts])
                              for column in _ROWS), self.radius)
        return _merged(segments + [new], self.radius)

    def _write(self, segment: Segment) -> str:
        name = f"segment-{uuid.uuid4().hex}"
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.folder))
        try:
            segment.save(staging)
            for file in staging.iterdir():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
            os.rename(staging, self.folder / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return name

    def _write_manifest(self, names: list[str], generation: int) -> None:
        manifest = {"format": FORMAT_VERSION, "index_uuid": self.index.uuid,
                    "scheme": self.index.scheme, "generation": generation,
                    "token": self.index.log_token(generation), "segments": names}
        staging = self.folder / f".manifest-{uuid.uuid4().hex}"
        try:
            with open(staging, "w") as handle:
                json.dump(manifest, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, self.folder / "manifest.json")
        except BaseException:
            staging.unlink(missing_ok=True)
            raise

    def _remove_orphans(self, live: set[str]) -> None:
        # Segments no longer named, and files left by a writer killed mid-write; we
        # hold the lock, so no write is in progress.
        for entry in self.folder.iterdir():
            if entry.name.startswith((".staging-", ".manifest-")) or (
                    entry.name.startswith("segment-") and entry.name not in live):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _merged(segments: list[Segment], radius: int) -> list[Segment]:
    """Merge the newest segments while the newer is at least half the older's size."""
    while len(segments) >= 2 and 2 * len(segments[-1]) >= len(segments[-2]):
        older, newer = segments[-2], segments[-1]
        segments = segments[:-2] + [Segment.build(
            *(np.concatenate([np.asarray(getattr(part, column)) for part in (older, newer)])
              for column in _ROWS), radius)]
    return segments
