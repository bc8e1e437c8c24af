"""The stages wired together: what ``add`` and ``check`` do, for the CLI and the
feeds batch alike. Data flows one way: fetch -> keyframes -> hashing -> index
-> match -> report.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .config import DEFAULT_MATCH_THRESHOLD, Settings
from .errors import BadInputError, DecodeError, IndexDatabaseError, ProvenanceError
from .fetch import FetchedMedia, fetch, forget, is_url, printable_path
from .frame_search import FrameSearch
from .hashing import HashedVideo, hash_video, hasher_for, scheme_of
from .index import (VIEW_BAND, VIEW_CENTRE, VIEW_STRIP, VIEW_WHOLE_BAND, VIEW_WHOLE_CENTRE,
                    VIEW_WHOLE_PICTURE, VIEW_WHOLE_STRIP, ContentAlreadyIndexed, Index,
                    VideoRecord)
from .keyframes import SAMPLING_VERSION
from .features import HashAlignment, find_feature_matches
from .match import MatchParams, QueryFrames, VideoMatch, find_matches, keypoint_match
from .report import Report, build_report


@dataclass(frozen=True)
class AddOutcome:
    source: str
    # "added", "new sighting", "already indexed" or "rehashed", the last perhaps
    # after a comma.
    status: str
    video_id: int
    keyframes: int


def add(source: str, index: Index, settings: Settings) -> AddOutcome:
    """Index one source; the same content seen again only adds a sighting."""
    media = fetch(source, settings)
    with _unreadable_download_dropped(source, settings):
        return add_fetched(media, None, index, settings)


@contextlib.contextmanager
def _unreadable_download_dropped(source: str, settings: Settings) -> Iterator[None]:
    """A downloaded copy that cannot be decoded is not kept: the server may
    have sent an error page, and the next attempt must download it again."""
    try:
        yield
    except (BadInputError, DecodeError):
        forget(source, settings)
        raise


def add_fetched(media: FetchedMedia, hashed: HashedVideo | None, index: Index,
                settings: Settings) -> AddOutcome:
    known = index.video_id_for(media.sha256)
    if known is not None:
        return _seen_again(known, media, hashed, index, settings)
    hashed = hashed or hash_video(media, settings, hasher_for(index.scheme), for_query=False)
    try:
        video_id = index.add_video(
            media, duration_s=hashed.info.duration_s, width=hashed.info.width,
            height=hashed.info.height, container_tags=hashed.info.tags, **_stored(hashed))
    except ContentAlreadyIndexed as race:
        return _seen_again(race.video_id, media, hashed, index, settings)
    return AddOutcome(media.metadata.source, "added", video_id, len(hashed.times))


def _seen_again(known: int, media: FetchedMedia, hashed: HashedVideo | None, index: Index,
                settings: Settings) -> AddOutcome:
    added = index.add_sighting(known, media.metadata)
    status = "new sighting" if added else "already indexed"
    # Indexed by an older version, and its file is at hand again.
    record = index.video(known)
    keyframes = record.keyframe_count if record else 0
    if record is not None and index.videos_to_rehash(known):
        rehashed = _rehash(record, media, hashed, index, settings)
        if rehashed is not None:
            status += ", rehashed"
            keyframes = rehashed
    return AddOutcome(media.metadata.source, status, known, keyframes)


def _stored(hashed: HashedVideo) -> dict:
    """What the index stores of a hashed video's keyframes (views.index_views)."""
    # The whole picture, its centre and its parts are hashed only when padding was
    # found; the strip and the band only where they cut the box (views.reframings).
    views = {stored: hashed.views[name] for name, stored in _STORED_AS.items()
             if name in hashed.views}
    return dict(sampling=SAMPLING_VERSION, times=hashed.times, details=hashed.details,
                hashes=hashed.hashes, views=views, features=hashed.features)


# The index's name (index.VIEW_*) for each view it stores but the footage's.
_STORED_AS = {"full": VIEW_WHOLE_PICTURE, "centre": VIEW_CENTRE,
              "full-centre": VIEW_WHOLE_CENTRE, "strip": VIEW_STRIP, "band": VIEW_BAND,
              "full-strip": VIEW_WHOLE_STRIP, "full-band": VIEW_WHOLE_BAND}


# Decoding sets the pace of a batch: two videos are fetched and hashed at once in
# worker processes (one per core) while this process writes to the index, in
# the order given.
BATCH_WORKERS = 2


def add_many(sources: list[str], index: Index, settings: Settings
             ) -> Iterator[tuple[str, AddOutcome | ProvenanceError]]:
    """Index each source, yielding (source, outcome or the error that stopped it) in order."""
    if len(sources) < 2:
        for source in sources:
            try:
                yield source, add(source, index, settings)
            except ProvenanceError as exc:
                yield source, exc
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # spawn: a forked copy of this process would share its SQLite connection.
    with ProcessPoolExecutor(BATCH_WORKERS, mp_context=get_context("spawn"),
                             initializer=_end_with_parent) as pool:
        window = BATCH_WORKERS * 2
        futures = collections.deque(pool.submit(_fetch_and_hash, s, settings, index.scheme)
                                    for s in sources[:window])
        waiting = collections.deque(sources[window:])
        for source in sources:
            media_or_error = futures.popleft().result()
            if waiting:
                futures.append(pool.submit(_fetch_and_hash, waiting.popleft(), settings,
                                           index.scheme))
            if isinstance(media_or_error, ProvenanceError):
                yield source, media_or_error
                continue
            try:
                yield source, add_fetched(*media_or_error, index, settings)
            except ProvenanceError as exc:
                yield source, exc


def _end_with_parent() -> None:
    """In a batch worker: be stopped when the process that started it dies,
    however it dies (SIGKILL, the out-of-memory killer), not left decoding
    with no one to take the result. Linux only; elsewhere nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _fetch_and_hash(source: str, settings: Settings, scheme: str
                    ) -> tuple[FetchedMedia, HashedVideo] | ProvenanceError:
    try:
        media = fetch(source, settings)
        with _unreadable_download_dropped(source, settings):
            return media, hash_video(media, settings, hasher_for(scheme), for_query=False)
    except ProvenanceError as exc:
        return exc


def rehash_stale(index: Index, settings: Settings
                 ) -> Iterator[tuple[int, AddOutcome | ProvenanceError]]:
    """Bring up to date each video stored before the index kept the centre and
    the reframings of every keyframe or sampled under an older version, from the
    file it was indexed from or any local file it was seen as (same SHA-256);
    yields (video id, outcome or the error that left it as it was)."""
    for video_id in index.videos_to_rehash():
        record = index.video(video_id)
        if record is None:  # removed meanwhile
            continue
        try:
            media = _file_of(record, settings)
            keyframes = _rehash(record, media, None, index, settings)
            if keyframes is None:
                continue  # removed meanwhile
            yield video_id, AddOutcome(printable_path(media.path), "rehashed", video_id,
                                       keyframes)
        except ProvenanceError as exc:
            yield video_id, exc


def _rehash(record: VideoRecord, media: FetchedMedia, hashed: HashedVideo | None,
            index: Index, settings: Settings) -> int | None:
    """Replace the video's keyframes with those of ``media`` (its very bytes), hashed
    now unless given: its keyframe count, or None if the index no longer holds it."""
    hashed = hashed or hash_video(media, settings, hasher_for(index.scheme), for_query=False)
    replaced = index.replace_frames(record.id, media.sha256, **_stored(hashed))
    return len(hashed.times) if replaced else None


def _file_of(record: VideoRecord, settings: Settings) -> FetchedMedia:
    """The video's file: where it was indexed from, else any local source it was
    seen as, if the bytes are still the same."""
    places = [record.media_path] + [s.metadata.source for s in record.sightings]
    for place in dict.fromkeys(p for p in places if p and not is_url(p)):
        if Path(place).is_file():
            media = fetch(place, settings)
            if media.sha256 == record.sha256:
                return media
    first = record.sightings[0].metadata if record.sightings else None
    source = f" ({first.url or first.source})" if first else ""
    raise BadInputError(f"no file with its bytes is at hand (indexed from "
                        f"{record.media_path or 'an unrecorded path'}): add it again from its "
                        f"source{source}, which hashes it anew and keeps its sightings")


def refresh_search(index: Index) -> None:
    """Bring the on-disk search structure up to date now, so the next check need not."""
    FrameSearch.open(index)


def match_hashed(hashed: HashedVideo, index: Index, settings: Settings) -> list[VideoMatch]:
    keep = query_rows(hashed, settings)
    query = QueryFrames(np.array(hashed.times)[keep],
                        [(view, hashed.views[view.name][keep]) for view in hashed.view_specs],
                        hashed.duration_s)
    params = MatchParams(radius=settings.radius_for(index.scheme.split("-")[0]),
                         score_threshold=settings.match_score_threshold,
                         query_interval_s=settings.query_interval_s)
    # The very same file is listed whatever its score: a clip under a second
    # has too few frames to reach the threshold on frames alone.
    same_file = index.video_id_for(hashed.media.sha256)
    # Every video the hashes meet at all: those under the threshold are not
    # listed, but their alignment lends weight to keypoints that agree with it.
    every = find_matches(query, FrameSearch.open(index), index.durations,
                         replace(params, score_threshold=0.0))
    matches = [m for m in every if m.score >= params.score_threshold or m.video_id == same_file]
    # Keypoints are searched for every video no hash match claims with a score
    # the default threshold would list, and win over a weaker hash match: a run
    # at a lower threshold (the benchmark lists everything, then reads at the
    # default) must list what a run at the default would.
    claimed = max(params.score_threshold, DEFAULT_MATCH_THRESHOLD)
    weak = {m.video_id: HashAlignment(m.speed, m.offset_s, m.mirrored, m.query_segment)
            for m in every if 0 < m.score < claimed}
    best = {m.video_id: m for m in matches}
    for m in keypoint_matches(hashed, index, params,
                              [m.video_id for m in matches if m.score >= claimed], weak):
        if m.video_id not in best or m.score > best[m.video_id].score:
            best[m.video_id] = m
    return sorted(best.values(), key=lambda m: (-m.score, m.video_id))


def keypoint_matches(hashed: HashedVideo, index: Index, params: MatchParams,
                     skip: list[int], hash_alignments: dict[int, HashAlignment]
                     ) -> list[VideoMatch]:
    """The videos (but ``skip``) that the query's keypoints meet, scoring
    ``params.score_threshold`` or more; those of ``hash_alignments`` also when
    fewer frames meet on the alignment a weak hash match found."""
    found = find_feature_matches(hashed.features, hashed.mirrored_features, index.features(),
                                 skip=skip, hash_alignments=hash_alignments)
    if not found:
        return []
    ids = sorted({f.video_id for f in found})
    records, durations = {v: index.video(v) for v in ids}, index.durations(ids)
    aspect = hashed.info.width / hashed.info.height if hashed.info.height else None
    out = []
    for f in found:
        record = records[f.video_id]
        if record is None or f.score < params.score_threshold:
            continue
        out.append(keypoint_match(
            f, query_duration_s=hashed.duration_s, query_step_s=hashed.feature_step_s,
            query_aspect=aspect, reference_duration_s=durations.get(f.video_id),
            reference_aspect=record.width / record.height if record.height else None))
    return out


def query_rows(hashed: HashedVideo, settings: Settings) -> np.ndarray:
    """The frames a query searches with. Frames sampled at the index's rate are
    thinned to every second sample or so (as a query sampled directly gets:
    keyframes.sampling_gap), the frames of fast motion between samples left out;
    frames sampled at the query's rate are all kept."""
    samples = np.flatnonzero(hashed.sampled)
    return samples[thin_out([hashed.times[i] for i in samples],
                            settings.query_interval_s - settings.sample_interval_s / 2)]


def thin_out(times: list[float], interval: float) -> np.ndarray:
    """Indices of the frames to query with: at most one per ``interval`` seconds."""
    keep, last = [], None
    for i, t in enumerate(times):
        if last is None or t - last >= interval - 1e-3:
            keep.append(i)
            last = t
    return np.array(keep, dtype=np.int64)


def check(source: str, index: Index, settings: Settings, *, add_after: bool = False,
          before_adding: Callable[[Report], None] | None = None) -> Report:
    """Match a source against the index as it is now; optionally index it
    afterwards, once ``before_adding`` has taken the report (written it out):
    a report that cannot be written leaves the index as it was."""
    media = fetch(source, settings)
    # A query needs samples only as often as it searches with; one kept for the
    # index afterwards is sampled at the index's rate.
    with _unreadable_download_dropped(source, settings):
        hashed = hash_video(media, settings, hasher_for(index.scheme), sparse=not add_after)
    matches = match_hashed(hashed, index, settings)
    report = build_report(hashed, matches, index, settings)
    if add_after:
        if before_adding is not None:
            before_adding(report)
        add_fetched(media, hashed, index, settings)
    return report


def default_index(settings: Settings, *, create: bool = True) -> Index:
    """The index at ``settings.db_path``; created if missing only with ``create``
    (a check against a mistyped path must not answer "no match")."""
    path = Path(settings.db_path)
    if not create and not path.exists():
        raise IndexDatabaseError(f"no index at {path}: `provenance add` creates one")
    return Index(path, default_scheme=scheme_of(hasher_for(settings.hash_algorithm)),
                 busy_timeout_s=settings.busy_timeout_s)

