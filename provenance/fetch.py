"""Fetch stage: turn a source (local path or URL) into a local media file plus
the provenance metadata that came with it.

Contract: ``fetch(source, settings)`` returns ``FetchedMedia`` or raises
``BadInputError`` (unusable source) / ``FetchError`` (download failed). URLs go
through yt-dlp's Python API and are cached under ``settings.cache_dir`` keyed by
the URL as given; a cached URL is never downloaded again. Each cache entry holds
the media, yt-dlp's ``.info.json`` (kept as evidence) and our own
``fetch.json``; entries appear atomically (downloaded into a temporary folder,
then renamed), so a killed download leaves nothing half-written behind.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BadInputError, FetchError

PRECISIONS = ("second", "day", "unknown")
# Where an upload time came from: a platform's own timestamp, a feed's
# pubDate, an HTTP Last-Modified header, or nowhere.
TIME_SOURCES = ("platform", "feed", "server", "none")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class UploadTime:
    """When the item was published, as far as anyone told us (UTC, ISO 8601)."""

    value: str | None = None
    precision: str = "unknown"
    source: str = "none"

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> "UploadTime":
        # A direct media link's only time is the server's Last-Modified header;
        # a page states its own upload time, unless yt-dlp's generic extractors
        # found none on it (no JSON-LD, which also names an uploader) and dated
        # the page by its Last-Modified header too.
        direct = info.get("direct") and info.get("url") == info.get("webpage_url")
        undated_page = (info.get("extractor_key") in ("Generic", "HTML5MediaEmbed")
                        and not info.get("uploader"))
        source = "server" if direct or undated_page else "platform"
        for key in ("timestamp", "release_timestamp"):
            stamp = info.get(key)
            if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
                try:  # whole seconds; NaN, infinity or past year 9999 is no time at all
                    when = datetime.fromtimestamp(int(stamp), timezone.utc)
                except (OverflowError, ValueError, OSError):
                    continue
                return cls(when.isoformat().replace("+00:00", "Z"), "second", source)
        date = info.get("upload_date") or info.get("release_date")
        if isinstance(date, str) and re.fullmatch(r"[0-9]{8}", date):
            try:  # a real calendar day, not 2024-13-45
                day = datetime.strptime(date, "%Y%m%d").date()
            except ValueError:
                return cls()
            return cls(day.isoformat(), "day", source)
        return cls()


@dataclass(frozen=True)
class SourceMetadata:
    source: str  # the absolute path given for a file, the URL as given for a URL
    retrieved_at: str
    url: str | None = None  # the page yt-dlp resolved (webpage_url)
    extractor: str | None = None
    platform_id: str | None = None
    uploader: str | None = None
    uploader_id: str | None = None
    channel: str | None = None
    title: str | None = None
    description: str | None = None
    duration_s: float | None = None
    upload_time: UploadTime = field(default_factory=UploadTime)
    info_json_path: str | None = None


@dataclass(frozen=True)
class FetchedMedia:
    path: Path
    sha256: str
    size_bytes: int
    metadata: SourceMetadata


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def printable_path(path: "Path | str") -> str:
    """A path as valid UTF-8 text (SQLite, JSON, terminals): bytes of a file name that
    are not UTF-8 are written as \\xNN, the rest is unchanged."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_url(source: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source))


def fetch(source: str, settings: Settings, *, refresh: bool = False) -> FetchedMedia:
    """``refresh`` downloads a URL again even if cached (a retry after a bad copy)."""
    if is_url(source):
        return _fetch_url(source, settings, refresh)
    return _fetch_file(source)


def _fetch_file(source: str) -> FetchedMedia:
    path = Path(source).expanduser()
    try:
        if not path.exists():
            raise BadInputError(f"{source}: no such file")
        if not path.is_file():
            raise BadInputError(f"{source}: not a regular file")
        path = path.resolve()
    except OSError as exc:  # a name too long, a loop of links
        raise BadInputError(f"{source[:200]}: not a usable path ({exc.strerror})") from exc
    try:
        size = path.stat().st_size
        if size == 0:
            raise BadInputError(f"{source}: empty file (0 bytes)")
        digest = sha256_file(path)
    except PermissionError as exc:
        raise BadInputError(f"{source}: cannot read it (permission denied)") from exc
    meta = SourceMetadata(source=printable_path(path), retrieved_at=now_utc(),
                          title=printable_path(path.name))
    return FetchedMedia(path, digest, size, meta)


def _fetch_url(url: str, settings: Settings, refresh: bool = False) -> FetchedMedia:
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as exc:  # an unclosed [IPv6 host], say
        raise BadInputError(f"{url}: not a valid URL ({exc})") from exc
    if scheme == "file":
        raise BadInputError(f"{url}: file:// URLs are not fetched; pass the local path instead")
    if scheme not in ("http", "https"):
        raise BadInputError(f"{url}: unsupported URL scheme {scheme!r} (http and https only)")
    entry = _cache_entry(url, settings)
    cached = None if refresh else _read_cache_entry(entry)
    if cached is not None:
        return cached
    entry.parent.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(entry.parent)
    partial = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    try:
        info, media = _download(url, partial, settings)
        sidecar = {
            "media": media.name,
            "sha256": sha256_file(media),
            "size_bytes": media.stat().st_size,
            "metadata": asdict(_metadata_from_info(url, info, entry / "media.info.json")),
        }
        (partial / "fetch.json").write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
        if entry.exists():  # a concurrent fetch of the same URL got there first
            shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    cached = _read_cache_entry(entry)
    assert cached is not None
    return cached


# A download in progress is never this old (max_download_seconds stops one at
# 10 minutes by default); older partial folders are a killed run's leftovers.
ABANDONED_AFTER_S = 24 * 3600


def _sweep_abandoned(media_dir: Path) -> None:
    """Remove partial downloads a run killed outright (SIGKILL, a power cut) left:
    SIGTERM and Ctrl-C clean up their own, these would stay for good."""
    cutoff = time.time() - ABANDONED_AFTER_S
    for leftover in media_dir.glob(".partial-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue  # removed by another run meanwhile


def _cache_entry(url: str, settings: Settings) -> Path:
    return settings.cache_dir / "media" / hashlib.sha256(url.encode()).hexdigest()[:32]


def forget(source: str, settings: Settings) -> None:
    """Drop the cached download of a URL (nothing for a local file): its copy
    could not be read, and the next attempt must download it again."""
    if is_url(source):
        shutil.rmtree(_cache_entry(source, settings), ignore_errors=True)


def _read_cache_entry(entry: Path) -> FetchedMedia | None:
    try:
        sidecar = json.loads((entry / "fetch.json").read_text(encoding="utf-8"))
        media = entry / sidecar["media"]
        if not media.is_file() or media.stat().st_size != sidecar["size_bytes"]:
            return None
        meta = dict(sidecar["metadata"])
        meta["upload_time"] = UploadTime(**meta["upload_time"])
        return FetchedMedia(media, sidecar["sha256"], sidecar["size_bytes"], SourceMetadata(**meta))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class YtdlpLog:
    """yt-dlp logger that keeps messages for our error text instead of printing."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    info = warning = debug

    def error(self, msg: str) -> None:
        self.errors.append(_ANSI.sub("", msg).removeprefix("ERROR: ").strip())


class _Abort(Exception):
    """Raised from yt-dlp's progress hook to stop a download over our limits."""


def _guard(settings: Settings):
    # yt-dlp checks max_filesize only against a declared Content-Length; a
    # chunked or lying server, or one that trickles, is stopped here.
    deadline = time.monotonic() + settings.max_download_seconds

    def hook(progress: dict[str, Any]) -> None:
        if progress.get("status") != "downloading":
            return
        if (progress.get("downloaded_bytes") or 0) > settings.max_download_bytes:
            raise _Abort(f"over the size cap of {settings.max_download_bytes} bytes")
        if time.monotonic() > deadline:
            raise _Abort(f"took over {settings.max_download_seconds:.0f} s")

    return hook


def _download(url: str, folder: Path, settings: Settings) -> tuple[dict[str, Any], Path]:
    import yt_dlp

    log = YtdlpLog()
    options = {
        "progress_hooks": [_guard(settings)],
        "outtmpl": str(folder / "media.%(ext)s"),
        # The smallest rendition that still hashes well: nearest to 480 lines.
        "format": "bv*[height>=360]/b[height>=360]/bv*/b",
        "format_sort": [f"res:{min(480, settings.max_height)}", "+size"],
        "max_filesize": settings.max_download_bytes,
        "socket_timeout": settings.socket_timeout_s,
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "noplaylist": True,
        "writeinfojson": True,
        "clean_infojson": True,
        "noprogress": True,
        "quiet": True,
        "no_warnings": True,
        "logger": log,
        "overwrites": True,
        "restrictfilenames": True,
        "postprocessor_args": {"ffmpeg": ["-bitexact"]},
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except _Abort as exc:
        raise FetchError(f"{url}: download stopped: {exc}") from exc
    except yt_dlp.utils.DownloadError as exc:
        reason = log.errors[-1] if log.errors else _ANSI.sub("", str(exc)).removeprefix("ERROR: ")
        raise FetchError(f"{url}: {reason[:300]}") from exc
    except Exception as exc:  # yt-dlp raises many types from deep inside
        raise FetchError(f"{url}: download failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not info:
        raise FetchError(f"{url}: yt-dlp returned nothing")
    if info.get("_type") == "playlist":
        raise BadInputError(f"{url}: a playlist or feed, not a single video (use `provenance watch`)")
    media = [p for p in folder.glob("media.*") if not p.name.endswith((".json", ".part", ".ytdl"))]
    if not media:
        raise FetchError(
            f"{url}: nothing was downloaded (over the size cap of "
            f"{settings.max_download_bytes} bytes, or no downloadable video)")
    return info, media[0]


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _seconds(value: Any) -> float | None:
    """A duration from outside data: a finite number of seconds >= 0, else unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _metadata_from_info(url: str, info: dict[str, Any], info_json: Path) -> SourceMetadata:
    return SourceMetadata(
        source=url,
        retrieved_at=now_utc(),
        url=_text(info.get("webpage_url")) or url,
        extractor=_text(info.get("extractor_key") or info.get("extractor")),
        platform_id=_text(info.get("id")),
        uploader=_text(info.get("uploader")),
        uploader_id=_text(info.get("uploader_id")),
        channel=_text(info.get("channel")),
        title=_text(info.get("title")),
        description=_text(info.get("description")),
        duration_s=_seconds(info.get("duration")),
        upload_time=UploadTime.from_info(info),
        info_json_path=str(info_json),
    )
