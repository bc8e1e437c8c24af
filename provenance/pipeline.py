"""The stages wired together: what ``add`` and ``check`` do, for the CLI and the
feeds batch alike. Data flows one way: fetch -> keyframes -> hashing -> index
-> match -> report.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Settings
from .fetch import FetchedMedia, fetch
from .hamming import HammingSearch
from .hashing import HashedVideo, hash_video, hasher_for, scheme_of
from .index import Index
from .match import MatchParams, QueryFrames, VideoMatch, find_matches
from .report import Report, build_report
from .views import query_views


@dataclass(frozen=True)
class AddOutcome:
    source: str
    status: str  # "added", "new sighting", "already indexed"
    video_id: int
    keyframes: int


def add(source: str, index: Index, settings: Settings) -> AddOutcome:
    """Index one source; the same content seen again only adds a sighting."""
    media = fetch(source, settings)
    return add_fetched(media, index, settings)


def add_fetched(media: FetchedMedia, index: Index, settings: Settings,
                hashed: HashedVideo | None = None) -> AddOutcome:
    known = index.video_id_for(media.sha256)
    if known is not None:
        added = index.add_sighting(known, media.metadata)
        record = index.video(known)
        return AddOutcome(media.metadata.source, "new sighting" if added else "already indexed",
                          known, record.keyframe_count if record else 0)
    hashed = hashed or hash_video(media, settings, hasher_for(index.scheme))
    video_id = index.add_video(
        media, duration_s=hashed.info.duration_s, width=hashed.info.width,
        height=hashed.info.height, container_tags=hashed.info.tags, times=hashed.times,
        details=hashed.details, hashes=hashed.hashes,
        whole_picture=None if hashed.box.is_full else hashed.views["full"])
    return AddOutcome(media.metadata.source, "added", video_id, len(hashed.times))


def match_hashed(hashed: HashedVideo, index: Index, settings: Settings) -> list[VideoMatch]:
    frames = index.frame_arrays()
    durations = index.durations()
    keep = thin_out(hashed.times, settings.query_interval_s)
    query = QueryFrames(np.array(hashed.times)[keep],
                        [(view, hashed.views[view.name][keep]) for view in query_views(hashed.box, hashed.regions)],
                        hashed.duration_s)
    params = MatchParams(radius=settings.radius_for(index.scheme.split("-")[0]),
                         score_threshold=settings.match_score_threshold,
                         query_interval_s=settings.query_interval_s)
    return find_matches(query, frames, HammingSearch(frames.hashes), durations, params)


def thin_out(times: list[float], interval: float) -> np.ndarray:
    """Indices of the frames to query with: at most one per ``interval`` seconds."""
    keep, last = [], None
    for i, t in enumerate(times):
        if last is None or t - last >= interval - 1e-3:
            keep.append(i)
            last = t
    return np.array(keep, dtype=np.int64)


def check(source: str, index: Index, settings: Settings, *, add_after: bool = False) -> Report:
    """Match a source against the index as it is now; optionally index it afterwards."""
    media = fetch(source, settings)
    hashed = hash_video(media, settings, hasher_for(index.scheme))
    matches = match_hashed(hashed, index, settings)
    report = build_report(hashed, matches, index, settings)
    if add_after:
        add_fetched(media, index, settings, hashed)
    return report


def default_index(settings: Settings) -> Index:
    return Index(Path(settings.db_path), default_scheme=scheme_of(hasher_for(settings.hash_algorithm)),
                 busy_timeout_s=settings.busy_timeout_s)

