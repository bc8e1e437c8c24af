"""Report stage: one typed ``Report`` object, serialised by ``to_json`` alone and
rendered for people by ``render_text`` (and ``report_html.render_html``).

The JSON form is versioned by ``schema_version`` and published as
``provenance/schemas/report.schema.json``; ``from_dict`` reads back only what
``validate`` accepts (field by field in docs/report.md). Times are seconds as floats:
segment times on a video's own timeline (since its first frame), instants as
ISO 8601 UTC strings.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import BadInputError
from .fetch import SourceMetadata, UploadTime, now_utc, printable_path
from .hashing import FrameHash
from .match import Relation, describe_relations

if TYPE_CHECKING:
    from pathlib import Path

    from .config import Settings
    from .hashing import HashedVideo
    from .index import Index, VideoRecord
    from .match import VideoMatch

SCHEMA_VERSION = "1.3"
SCHEMA_RESOURCE = "schemas/report.schema.json"
EARLIEST_CAVEAT = ("Earliest upload among the copies in this index, not necessarily the "
                   "original: footage may have appeared earlier elsewhere.")


@dataclass(frozen=True)
class SightingReport:
    video_id: int
    source: str
    url: str | None
    platform: str | None
    platform_id: str | None
    uploader: str | None
    uploader_id: str | None
    channel: str | None
    title: str | None
    upload_time: UploadTime
    retrieved_at: str


@dataclass(frozen=True)
class VideoReport:
    id: int
    sha256: str
    source: str
    url: str | None
    title: str | None
    uploader: str | None
    upload_time: UploadTime
    duration_s: float | None
    width: int | None
    height: int | None
    keyframe_count: int
    media_path: str | None  # local copy at index time (for thumbnails), may be gone later
    sightings: list[SightingReport]


@dataclass(frozen=True)
class Alignment:
    speed: float  # reference seconds per query second (1.5: the query is sped up 1.5x)
    offset_s: float  # reference_t = speed * query_t + offset_s
    mirrored: bool


@dataclass(frozen=True)
class FramePairReport:
    query_t: float
    reference_t: float
    distance: int | None  # Hamming bits; None for keypoint frames (schema 1.3)
    inliers: int | None = None  # keypoints carried onto the other frame's (schema 1.3)


@dataclass(frozen=True)
class MatchReport:
    video: VideoReport
    score: float
    query_segment: tuple[float, float]
    reference_segment: tuple[float, float]
    query_coverage: float
    reference_coverage: float
    matched_frames: int
    mean_distance: float | None  # None when matched by keypoints
    alignment: Alignment
    relations: list[Relation]
    frame_pairs: list[FramePairReport]
    method: str = "frame_hashes"  # or "keypoints" (schema 1.3; match.METHOD_*)


@dataclass(frozen=True)
class QueryReport:
    source: str
    sha256: str
    size_bytes: int
    duration_s: float
    width: int
    height: int
    keyframe_count: int
    media_path: str  # the local file that was hashed (a cached download for a URL)
    metadata: SourceMetadata


@dataclass(frozen=True)
class EarliestSighting:
    sighting: SightingReport
    basis: str  # "upload_time" or "retrieved_at" when no copy has an upload time
    caveat: str = EARLIEST_CAVEAT


@dataclass(frozen=True)
class TimelineEntry:
    """One sighting of matched footage, in time order, and how it relates to the query."""

    sighting: SightingReport
    score: float
    relation: str  # the match's relation kinds, comma-separated


@dataclass(frozen=True)
class KeyframeHash:
    t: float
    hash: str  # FrameHash text form
    detail: float


@dataclass(frozen=True)
class Evidence:
    """What exactly was checked, to stand as a record later."""

    sha256: str
    size_bytes: int
    retrieved_at: str
    info_json_path: str | None
    container: dict[str, str]  # ffprobe format and stream tags
    content_credentials: dict[str, Any]  # C2PA manifest summary, or why none
    keyframes: list[KeyframeHash]


@dataclass(frozen=True)
class Decision:
    hash_scheme: str
    radius_bits: int
    score_threshold: float
    sample_interval_s: float


@dataclass(frozen=True)
class Report:
    schema_version: str
    created_at: str
    tool: dict[str, str]
    decision: Decision
    query: QueryReport
    matches: list[MatchReport]
    earliest_sighting: EarliestSighting | None
    timeline: list[TimelineEntry]
    evidence: Evidence
    index: dict[str, Any] = field(default_factory=dict)


def tool_versions(scheme: str) -> dict[str, str]:
    import imagehash
    import pdqhash
    import yt_dlp.version

    from .keyframes import ffmpeg_version

    return {
        "provenance": __version__,
        "yt_dlp": yt_dlp.version.__version__,
        "ffmpeg": ffmpeg_version(),
        "imagehash": getattr(imagehash, "__version__", "unknown"),
        "pdqhash": getattr(pdqhash, "__version__", "unknown"),
        "hash_scheme": scheme,
    }


def _sighting_report(video_id: int, meta: SourceMetadata) -> SightingReport:
    return SightingReport(video_id, meta.source, meta.url, meta.extractor, meta.platform_id,
                          meta.uploader, meta.uploader_id, meta.channel, meta.title,
                          meta.upload_time, meta.retrieved_at)


def _video_report(record: "VideoRecord") -> VideoReport:
    sightings = [_sighting_report(record.id, s.metadata) for s in record.sightings]
    first = sorted(sightings, key=_sort_key)[0] if sightings else None
    return VideoReport(
        id=record.id, sha256=record.sha256,
        source=record.sightings[0].metadata.source if record.sightings else "",
        url=first.url if first else None, title=first.title if first else None,
        uploader=first.uploader if first else None,
        upload_time=first.upload_time if first else UploadTime(),
        duration_s=record.duration_s, width=record.width, height=record.height,
        keyframe_count=record.keyframe_count, media_path=record.media_path,
        sightings=sorted(sightings, key=_sort_key))


def _sort_key(s: SightingReport) -> tuple:
    # Known upload times first, in time order (a day sorts at its start), then
    # the rest by when we retrieved them.
    if s.upload_time.value:
        return (0, s.upload_time.value[:19].replace("Z", ""), s.retrieved_at)
    return (1, s.retrieved_at, s.source)


def build_report(hashed: "HashedVideo", matches: list["VideoMatch"], index: "Index",
                 settings: "Settings") -> Report:
    match_reports = []
    for m in matches:
        record = index.video(m.video_id)
        if record is None:  # removed between search and report
            continue
        match_reports.append(MatchReport(
            video=_video_report(record), score=m.score, query_segment=m.query_segment,
            reference_segment=m.reference_segment, query_coverage=m.query_coverage,
            reference_coverage=m.reference_coverage, matched_frames=m.matched_frames,
            mean_distance=m.mean_distance, alignment=Alignment(m.speed, m.offset_s, m.mirrored),
            relations=describe_relations(
                m, same_file=record.sha256 == hashed.media.sha256,
                query_shape=(hashed.info.width, hashed.info.height),
                reference_shape=(record.width, record.height)),
            frame_pairs=[FramePairReport(p.query_t, p.reference_t, p.distance, p.inliers)
                         for p in m.pairs],
            method=m.method))
    info = hashed.info
    query = QueryReport(
        source=hashed.media.metadata.source, sha256=hashed.media.sha256,
        size_bytes=hashed.media.size_bytes, duration_s=round(hashed.duration_s, 3),
        width=info.width, height=info.height, keyframe_count=len(hashed.times),
        media_path=printable_path(hashed.media.path), metadata=hashed.media.metadata)
    stats = index.summary()
    return Report(
        schema_version=SCHEMA_VERSION,
        created_at=now_utc(),
        tool=tool_versions(hashed.scheme),
        decision=Decision(hashed.scheme, settings.radius_for(hashed.scheme.split("-")[0]),
                          settings.match_score_threshold, settings.sample_interval_s),
        query=query,
        matches=match_reports,
        earliest_sighting=earliest_sighting(match_reports),
        timeline=timeline(match_reports),
        evidence=Evidence(
            sha256=hashed.media.sha256, size_bytes=hashed.media.size_bytes,
            retrieved_at=hashed.media.metadata.retrieved_at,
            info_json_path=hashed.media.metadata.info_json_path,
            container=dict(info.tags),
            content_credentials=content_credentials(hashed.media.path),
            keyframes=[KeyframeHash(t, str(FrameHash.from_words(hashed.scheme, words)), d)
                       for t, words, d in zip(hashed.times, hashed.hashes, hashed.details)]),
        index={"videos": stats["videos"], "keyframes": stats["keyframes"]},
    )


def timeline(matches: list[MatchReport]) -> list[TimelineEntry]:
    entries = [TimelineEntry(s, m.score, ", ".join(r.kind for r in m.relations))
               for m in matches for s in m.video.sightings]
    return sorted(entries, key=lambda e: _sort_key(e.sighting))


def content_credentials(path: "Path") -> dict[str, Any]:
    """C2PA manifest summary when c2pa-python is installed; absence is neutral."""
    try:
        import c2pa
    except ImportError:
        return {"checked": False, "present": False, "reason": "c2pa-python not installed"}
    try:
        with c2pa.Reader(str(path)) as reader:
            manifest = json.loads(reader.json())
    except Exception as exc:  # no manifest is the usual case: reposts drop it
        return {"checked": True, "present": False, "reason": clean(exc, 200)}
    active = manifest.get("manifests", {}).get(manifest.get("active_manifest", ""), {})
    return {
        "checked": True, "present": True,
        "validation_state": manifest.get("validation_state"),
        "signer": (active.get("signature_info") or {}).get("issuer"),
        "claim_generator": active.get("claim_generator"),
    }


def earliest_sighting(matches: list[MatchReport]) -> EarliestSighting | None:
    sightings = [s for m in matches for s in m.video.sightings]
    if not sightings:
        return None
    first = min(sightings, key=_sort_key)
    return EarliestSighting(first, "upload_time" if first.upload_time.value else "retrieved_at")


def to_dict(report: Report) -> dict[str, Any]:
    return json.loads(to_json(report))


def to_json(report: Report) -> str:
    """The one serialiser of reports."""
    return json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False) + "\n"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def strip_control(text: object) -> str:
    """An outside string without control codes or bidi overrides (newlines and tabs kept):
    a title must not be able to reorder or hide what is printed after it."""
    return _CONTROL.sub("", str(text))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _show_surrogate(match: re.Match) -> str:
    # a byte of a non-UTF-8 file name (argv's surrogate escape) shows as \xNN; any other
    # lone surrogate (JSON's \ud800) cannot be written as UTF-8 at all
    code = ord(match[0])
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def clean(text: object, limit: int = 120) -> str:
    """An outside string made safe for a terminal: no control codes, one line, bounded,
    valid UTF-8."""
    flat = _SURROGATE.sub(_show_surrogate, strip_control(text))
    flat = flat.replace("\n", " ").replace("\t", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _when(t: UploadTime) -> str:
    if not t.value:
        return "upload time unknown"
    return f"{t.value} ({t.precision}, from {t.source})"


def _table(headers: list[str], rows: list[list[str]], limits: list[int]) -> list[str]:
    cells = [[clean(c, n) for c, n in zip(row, limits)] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def render_text(report: Report, color: bool = False) -> str:
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    q = report.query
    videos = report.index.get("videos", 0)
    lines = [style("provenance check", bold=True),
             f"  query    {clean(q.source)}",
             f"           sha256 {q.sha256[:16]}…  {q.duration_s:.1f} s  {q.width}x{q.height}  "
             f"{q.keyframe_count} keyframes",
             f"  index    {videos} videos, "
             f"{report.index.get('keyframes', 0)} keyframes ({report.decision.hash_scheme})", ""]
    if not report.matches:
        lines += [style("No indexed video shares footage with this clip.", fg="green"),
                  f"  (checked against {videos} indexed videos; footage outside the index "
                  "is not covered)"]
        return "\n".join(lines) + "\n"
    lines += [style(f"Known footage: {len(report.matches)} indexed video(s) share footage "
                    "with this clip.", fg="yellow", bold=True), ""]
    e = report.earliest_sighting
    if e is not None:
        s = e.sighting
        lines += [style("Earliest known sighting", bold=True),
                  f"  {clean(s.url or s.source)}",
                  f"  by {clean(s.uploader or 'unknown uploader')}, "
                  + (_when(s.upload_time) if e.basis == "upload_time"
                     else f"no upload time known; first retrieved {s.retrieved_at}"),
                  f"  ({e.caveat})", ""]
    lines.append(style("Timeline: every sighting of the matched footage, earliest first",
                       bold=True))
    rows = [[_when(t.sighting.upload_time) if t.sighting.upload_time.value
             else f"unknown; retrieved {t.sighting.retrieved_at}",
             f"#{t.sighting.video_id}", t.sighting.platform or "-", t.sighting.uploader or "-",
             t.relation, f"{t.score:.2f}", t.sighting.url or t.sighting.source]
            for t in report.timeline]
    lines += _table(["uploaded", "video", "platform", "uploader", "relation", "score", "where"],
                    rows, [44, 8, 14, 20, 30, 5, 70])
    lines += ["", style(f"{len(report.matches)} matching video(s), best first", bold=True)]
    for rank, m in enumerate(report.matches, 1):
        v = m.video
        qa, qb = m.query_segment
        ra, rb = m.reference_segment
        shown = (f"{rb:.1f}-{ra:.1f} s backwards" if m.alignment.speed < 0
                 else f"{ra:.1f}-{rb:.1f} s")
        lines += [
            f"{rank:>2}. " + style(f"score {m.score:.2f}", fg="yellow") + f"  video #{v.id}  "
            f"{clean(v.title or v.source, 60)}",
            f"    query {qa:.1f}-{qb:.1f} s  <->  reference {shown}"
            f"  ({m.matched_frames} frames, {m.query_coverage:.0%} of query, "
            f"{m.reference_coverage:.0%} of reference)",
        ]
        lines += [f"    - {r.kind}: {clean(r.evidence, 100)}" for r in m.relations]
    return "\n".join(lines) + "\n"


@functools.cache
def _validator() -> Any:
    import jsonschema

    text = importlib.resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def load_schema() -> dict[str, Any]:
    """The published JSON Schema of the report (provenance/schemas/report.schema.json)."""
    return copy.deepcopy(_validator().schema)


def validate(report_dict: Any) -> None:
    """Raise BadInputError, naming the first offending field, unless report_dict is a
    report exactly as to_json writes it."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(report_dict))
    if error is None:
        return
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raise BadInputError(f"not a valid provenance report: {where.lstrip('.') or 'top level'}: "
                        f"{clean(error.message, 200)}")


def from_dict(data: dict[str, Any]) -> Report:
    """Rebuild a Report from its JSON form (the inverse of to_json)."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        if isinstance(version, str):
            shown = repr(clean(version, 40))
        else:
            shown = "missing" if version is None else f"a {type(version).__name__}, not a string"
        raise BadInputError(f"not a provenance report of schema {SCHEMA_VERSION} "
                            f"(schema_version {shown})")
    validate(data)
    try:
        return _build(Report, data)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise BadInputError(f"malformed report: {clean(exc, 200)}") from exc


def load_report(path: "Path") -> Report:
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_not_a_number,
                          parse_float=_finite)
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BadInputError(f"{path}: not a readable JSON report ({clean(exc, 200)})") from exc
    return from_dict(data)


def _not_a_number(name: str) -> float:
    # Python's json reads NaN and Infinity, which JSON does not have; to_json would write
    # them back as invalid JSON.
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _build(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise TypeError(f"{kind.__name__} must be an object")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _build(hints[k], v) for k, v in value.items() if k in names})
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _build(options[0], value)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_build(item, v) for v in _as(list, value)]
    if origin is tuple:
        return tuple(_build(a, v) for a, v in zip(typing.get_args(kind), _as(list, value)))
    if origin is dict:
        return dict(_as(dict, value))
    if kind is float:
        return float(_as((int, float), value))
    if kind in (int, str, bool):
        return _as(kind, value)
    return value


def _as(kind: Any, value: Any) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind}, got {type(value).__name__}")
    return value
