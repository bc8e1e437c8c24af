"""Keyframes stage: decode a video with ffmpeg and yield small grey frames.

Contract: ``extract(path, settings, duration_s)`` yields ``Keyframe`` objects in
presentation order. ``Keyframe.t`` is seconds since the first decoded frame of
the video stream, read from the frame's own presentation timestamp (so it is
right on variable-frame-rate phone video). A frame is taken every
``sample_interval_s`` (a query's every ``query_interval_s``; see ``sampling_gap``)
and at each scene cut ffmpeg's scene score puts over ``scene_threshold``; the
uniform sampling restarts at each such cut, so index and query samples line up
on content, not on the clock. The score is taken on the averaged frames (below),
which spread a cut over a few frames: only a stark one (dark to bright, unlike
shots) passes, and most cuts between ordinary shots are sampled on the clock.
Given a ``MotionRule`` it also yields the frames between the samples that rule
keeps (``Keyframe.sampled`` False).
Frames come through pipes as raw 256x256 grey pixels; nothing is written to
disk. A long video is decoded in spans, two at a time, each with its own ffmpeg.
Each frame is the average of itself and the frames of the ``TEMPORAL_MIX_S``
before it, whatever the frame rate. Frames whose detail score is
under ``DETAIL_FLOOR`` are dropped (see ``detail_threshold`` for the rest).
"""
from __future__ import annotations

import collections
import functools
import queue
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import ffmpeg
import numpy as np

from .config import Settings
from .errors import BadInputError, DecodeError

FRAME_SIZE = 256
# Each sample averages the frames from this long before it up to it, measured
# in time rather than in frames, so that a 10 fps repost and its 30 fps original
# average over about the same motion: two frames 0.1 s apart against four
# (three frames of each would mix 0.2 s against 0.067 s). A single 10 fps frame
# met its original's four-frame average 20-30 bits off on fast footage
# (bench/accuracy's butterfly, baseball, fruit). At 0.09 s, 24 fps mixes three
# frames and 30 fps four, as before; 15 fps two, not three: a 15 fps clip mixed
# over 0.133 s lost its 12 fps copy (fruit's GIF, 0.50 -> 0.03).
TEMPORAL_MIX_S = 0.09
MAX_MIX_FRAMES = 8
# The index records which sampling each video's keyframes came from, so that
# `rehash` can take them again. 1: each averaged the frames shown in 0.125 s (one
# at 10 fps, six at 50, eight at 60); 2: the TEMPORAL_MIX_S above; 3: also the
# frames of fast motion between the samples (hashing.motion_samples). Raise it
# with any change to which frames are kept or what a sample is.
SAMPLING_VERSION = 3
MAX_PIXELS = 8192 * 8192
_PTS = re.compile(rb"Parsed_showinfo.*?\bpts_time:\s*(-?[0-9.]+)")
_SCENE = re.compile(rb"lavfi\.scene_score=([0-9.]+)")
_TOO_BIG = re.compile(rb"Picture size (\d+)x(\d+) exceeds specified max pixel count")
# Containers a video arrives in. ffmpeg also reads text files as video (tty),
# playlists that open other files or URLs (concat, hls) and image sequences:
# none of those is a video someone posted.
VIDEO_CONTAINERS = {"mov", "mp4", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "gif",
                    "asf", "ogg", "h264", "hevc", "m4v", "ivf", "mxf", "nut", "dv", "rm",
                    "3gp", "yuv4mpegpipe", "apng", "obu", "av1"}
# Local media may only read the file itself, never a URL or another file it names.
_PROTOCOLS = "file,pipe"
# ffmpeg-python hashes its arguments as UTF-8: the real path (maybe not UTF-8) replaces
# this stand-in after compiling.
_INPUT = "\0provenance-input\0"


@dataclass(frozen=True)
class Keyframe:
    t: float  # seconds since the first decoded frame
    pixels: np.ndarray  # FRAME_SIZE x FRAME_SIZE uint8 grey, the whole picture squashed
    detail: float  # 0-100, see detail_score
    # One of the uniform or scene-cut samples; False: a frame between them, which
    # only ``extract(..., motion=...)`` yields.
    sampled: bool = True


@dataclass(frozen=True)
class MotionRule:
    """Which frames between the samples ``extract`` also yields: each whose
    ``signature`` (an array of uint64 words) is ``min_bits`` or more from the
    signature of the last frame yielded in its span; with ``min_bits`` 0, every
    frame."""

    signature: Callable[[np.ndarray], np.ndarray]
    min_bits: float


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float | None
    width: int
    height: int
    codec: str
    format_name: str
    tags: dict[str, str]
    frame_rate: float | None = None  # frames per second, None when unknown (variable)


@functools.cache
def ffmpeg_exe() -> str:
    """Debian's ffmpeg when installed, else the binary shipped in imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - install problem
        raise DecodeError("ffmpeg not found: install Debian's ffmpeg or imageio-ffmpeg") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def ffprobe_exe() -> str | None:
    return shutil.which("ffprobe")


@functools.cache
def ffmpeg_version() -> str:
    import subprocess

    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False)
    first = out.stdout.splitlines()[0] if out.stdout else "unknown"
    return first.split(" Copyright")[0].removeprefix("ffmpeg version ").strip()


def probe(path: Path) -> MediaInfo:
    """Read the container and the first video stream's header."""
    exe = ffprobe_exe()
    if exe is None:
        return _probe_without_ffprobe(path)
    data = _ffprobe(path, exe)
    video = [s for s in data.get("streams", []) if s.get("codec_type") == "video"]
    fmt = data.get("format", {})
    if not video:
        raise DecodeError(f"{path.name}: no video stream (audio-only or not a video)")
    stream = video[0]
    _check_container(path, str(fmt.get("format_name", "")))
    info = MediaInfo(
        duration_s=_float(fmt.get("duration")) or _float(stream.get("duration")),
        width=int(stream.get("width") or 0),
        height=int(stream.get("height") or 0),
        codec=str(stream.get("codec_name", "")),
        format_name=str(fmt.get("format_name", "")),
        tags={**{str(k): str(v) for k, v in fmt.get("tags", {}).items()},
              **{f"stream:{k}": str(v) for k, v in stream.get("tags", {}).items()}},
        frame_rate=_rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")),
    )
    _check_dimensions(path, info)
    return info


def _too_big(path: Path, stderr: bytes) -> None:
    found = _TOO_BIG.search(stderr or b"")
    if found:
        raise BadInputError(
            f"{path.name}: frames of {int(found[1])}x{int(found[2])} are over the limit of "
            f"{MAX_PIXELS} pixels")


def _ffprobe(path: Path, exe: str) -> dict:
    """ffprobe's JSON. ``-max_pixels`` makes the decoder refuse a huge frame before
    allocating it: a header declaring 16000x16000 costs nothing (without it ffprobe
    decodes one frame: 1.3 GB, ~18 s). ffprobe may still exit 0 then (GIF): read stderr."""
    import json
    import subprocess

    args = [exe, "-hide_banner", "-v", "error", "-protocol_whitelist", _PROTOCOLS,
            "-max_pixels", str(MAX_PIXELS), "-show_format", "-show_streams", "-of", "json",
            str(path)]
    done = subprocess.run(args, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    _too_big(path, done.stderr)
    if done.returncode != 0:
        detail = _last_line(done.stderr) or "ffprobe could not read it"
        raise DecodeError(f"{path.name}: not a readable media file ({detail})")
    return json.loads(done.stdout)


def _probe_without_ffprobe(path: Path) -> MediaInfo:
    # imageio-ffmpeg ships no ffprobe: read what `ffmpeg -i` prints instead.
    import subprocess

    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-max_pixels", str(MAX_PIXELS), "-i",
                          str(path)], capture_output=True, check=False).stderr
    _too_big(path, err)
    out = err.decode("utf-8", "replace")
    container = re.search(r"Input #0, ([\w,]+), from", out)
    _check_container(path, container[1] if container else "")
    match = re.search(r"Stream #\S+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})", out)
    if not match:
        raise DecodeError(f"{path.name}: no video stream (audio-only or not a video)")
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", out)
    duration = (int(dur[1]) * 3600 + int(dur[2]) * 60 + float(dur[3])) if dur else None
    fps = re.search(r"Stream #\S+.*?: Video: .*?, ([\d.]+) fps", out)
    info = MediaInfo(duration, int(match[2]), int(match[3]), match[1], "", {},
                     _rate(fps[1]) if fps else None)
    _check_dimensions(path, info)
    return info


def _check_container(path: Path, format_name: str) -> None:
    if not set(format_name.split(",")) & VIDEO_CONTAINERS:
        kind = "a still image" if format_name.endswith("_pipe") or format_name == "image2" \
            else f"not a video container ({format_name or 'unknown'})"
        raise DecodeError(f"{path.name}: {kind}")


def _check_dimensions(path: Path, info: MediaInfo) -> None:
    if info.width * info.height > MAX_PIXELS:
        raise BadInputError(
            f"{path.name}: frames of {info.width}x{info.height} are over the limit of "
            f"{MAX_PIXELS} pixels")


def detail_score(pixels: np.ndarray) -> float:
    """Mean absolute luminance gradient, scaled to 0-100.

    Black, flat and faded-out frames score near 0; ordinary footage 20-100.
    Same spirit as PDQ's quality metric, computed on our small grey frame.
    """
    grey = pixels.astype(np.int16)
    gradient = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
    return float(min(100.0, gradient * 8.0))


# Under this detail score a frame is black or flat whatever the video (black,
# grey and red frames through x264 measure 0); see detail_threshold.
DETAIL_FLOOR = 4.0
# A video whose typical frame is under min_detail is judged against itself:
# frames under this share of its median detail are dropped.
OWN_DETAIL_SHARE = 0.5


def detail_threshold(details: list[float], min_detail: float) -> float:
    """The detail score a frame of a video needs to be hashed, from the scores of
    its opening frames: ``min_detail``, or, when most of them are under it, half
    their median (never under DETAIL_FLOOR). A heavily blurred or washed-out
    repost is all under ``min_detail`` (the benchmark's strongest blur of a dim
    clip: 7.3-7.6, against 33-34 for the original): dropping every frame left
    nothing to search with."""
    if not details:
        return min_detail
    median = float(np.median(details))
    return min_detail if median >= min_detail else max(DETAIL_FLOOR, OWN_DETAIL_SHARE * median)


def mix_frames(frame_rate: float | None) -> int:
    """How many frames, first to last ``TEMPORAL_MIX_S`` apart at this rate, one
    sample averages (3 when unknown)."""
    if not frame_rate:
        return 3
    return int(min(MAX_MIX_FRAMES, 1 + round(frame_rate * TEMPORAL_MIX_S)))


def sampling_gap(settings: Settings, frame_rate: float | None, sparse: bool) -> float:
    """Least seconds between two uniform samples: ``sample_interval_s`` for the
    index, ``query_interval_s`` when ``sparse`` (a query).

    At a known frame rate samples fall on whole frames: the index's every
    round(interval x rate) frames, a query's a whole multiple of that, so that a
    query's frames are among the index's when the copies share a frame rate
    (copies sampled out of step lost up to half their frames: every third frame
    against every second at 10 fps, every seventh against every fourth at 30).
    Half a frame of slack absorbs timestamp jitter."""
    multiple = max(1, round(settings.query_interval_s / settings.sample_interval_s)) \
        if sparse else 1
    if not frame_rate:
        return settings.sample_interval_s * multiple
    step = max(1, round(settings.sample_interval_s * frame_rate)) * multiple
    return (step - 0.5) / frame_rate


def build_command(path: Path, settings: Settings, start_s: float = 0.0,
                  length_s: float | None = None, split: bool = False,
                  frame_rate: float | None = None, sparse: bool = False,
                  every_frame: bool = False) -> list[str]:
    """ffmpeg's command for one span. It selects the samples itself or, with
    ``every_frame``, passes every frame and prints each one's scene score for
    ``Sampler`` to select the same samples from."""
    every = sampling_gap(settings, frame_rate, sparse)
    select = (f"isnan(prev_selected_t)+gte(t-prev_selected_t,{every:.6f})"
              f"+gt(scene,{settings.scene_threshold})")
    if every_frame:
        # Evaluating the scene score is what makes select compute it.
        select = "gte(scene,0)"
    span = {"ss": start_s, "copyts": None} if start_s > 0 else {}
    mixed = mix_frames(frame_rate)
    stream = (
        ffmpeg.input(_INPUT, t=min(length_s or settings.max_duration_s,
                                   settings.max_duration_s - start_s),
                     protocol_whitelist=_PROTOCOLS, max_pixels=MAX_PIXELS,
                     # Spans run side by side, one core each.
                     **({"threads": 1} if split else {}), **span)
        .video.filter("scale", FRAME_SIZE, FRAME_SIZE, flags="area")
    )
    # Averaging a few neighbouring frames makes a sample stand for a short
    # window: two copies never sample the same instant, and flashes or
    # strobing made single frames one frame apart hash far apart.
    if mixed > 1:
        stream = stream.filter("tmix", frames=mixed)
    stream = stream.filter("select", select)
    if every_frame:
        stream = stream.filter("metadata", mode="print", key="lavfi.scene_score")
    stream = stream.filter("showinfo")
    out = stream.output("pipe:", format="rawvideo", pix_fmt="gray", fps_mode="passthrough")
    args = out.global_args("-nostdin", "-hide_banner", "-loglevel", "info").compile(cmd=ffmpeg_exe())
    return [str(path) if arg == _INPUT else arg for arg in args]


class Sampler:
    """The samples ffmpeg's select in ``build_command`` takes, taken in Python from
    every frame of a span with its scene score: the first frame, then each frame
    ``sampling_gap`` after the last sample, and every scene cut. (The same
    numbers: the gap as the command prints it, the score as ffmpeg prints it.)"""

    def __init__(self, settings: Settings, frame_rate: float | None, sparse: bool) -> None:
        self.every = float(f"{sampling_gap(settings, frame_rate, sparse):.6f}")
        self.cut = settings.scene_threshold
        self.last: float | None = None

    def takes(self, t: float, scene: float) -> bool:
        if self.last is None or t - self.last >= self.every or scene > self.cut:
            self.last = t
            return True
        return False


# Decoding, not hashing, sets the pace: a long video is cut into spans decoded by
# one ffmpeg each, two at a time (the machines have two cores). A span's frames
# wait in memory until the spans before it are through: ~47 MB for the samples of
# a 90 s span, and on the fastest footage, whose every frame a motion rule keeps,
# up to 350 MB at 60 fps.
# Spans are cut at fixed fractions of the duration, not on keyframes: the uniform
# sampling restarts where a span starts, and a re-encoded copy (same duration,
# other keyframes) must restart at the same instant to be sampled alike. Cutting
# on keyframes saved the decoding back to the keyframe before each cut but lost
# 7 copies in bench/accuracy whose samples then fell 2 frames apart.
PARALLEL_SPANS = 2
MIN_SPLIT_S = 20.0
MAX_SPAN_S = 90.0


def spans(duration_s: float | None, settings: Settings) -> list[tuple[float, float | None]]:
    """(start, length) of each span; one open-ended span when not worth splitting."""
    if not duration_s or duration_s < MIN_SPLIT_S:
        return [(0.0, None)]
    duration_s = min(duration_s, settings.max_duration_s)
    count = max(PARALLEL_SPANS, int(np.ceil(duration_s / MAX_SPAN_S)))
    length = duration_s / count
    # The last span is open-ended: a container's duration can be a little short.
    return [(i * length, length if i < count - 1 else None) for i in range(count)]


def extract(path: Path, settings: Settings, duration_s: float | None = None,
            frame_rate: float | None = None, sparse: bool = False,
            motion: MotionRule | None = None) -> Iterator[Keyframe]:
    """Yield the kept keyframes of ``path``; raise DecodeError if there are none.
    With ``motion``, also the frames between the samples it keeps (the samples
    are the same as without)."""
    from concurrent.futures import ThreadPoolExecutor

    path = Path(path).resolve()  # absolute: a name starting with '-' is never an option
    plan = spans(duration_s, settings)
    decoded, origin, errors = 0, None, []
    stop = threading.Event()
    with ThreadPoolExecutor(PARALLEL_SPANS) as pool:
        # At most one span decoded ahead of the two running: memory stays bounded
        # however long the video. The first span's frames are yielded as they
        # come, so hashing them overlaps decoding (hashing a 60 s 720p query,
        # 38 views a frame, took 4.5 s instead of 5.2).
        split = len(plan) > 1

        def start(span: tuple[float, float | None]):
            frames: queue.Queue = queue.Queue()
            return frames, pool.submit(_decode_span, path, settings, *span, frames, stop,
                                       split=split, frame_rate=frame_rate, sparse=sparse,
                                       motion=motion)

        running = collections.deque(start(span) for span in plan[:PARALLEL_SPANS + 1])
        waiting = collections.deque(plan[PARALLEL_SPANS + 1:])
        try:
            while running:
                frames, future = running.popleft()
                while (item := frames.get()) is not _SPAN_END:
                    pts, pixels, sampled, score = item
                    decoded += 1
                    origin = pts if origin is None else origin
                    if score >= DETAIL_FLOOR:
                        yield Keyframe(t=round(pts - origin, 3), pixels=pixels, detail=score,
                                       sampled=sampled)
                errors += future.result()
                if waiting:
                    running.append(start(waiting.popleft()))
        finally:
            # A consumer that stops early (an error, a bound reached) stops every ffmpeg.
            stop.set()
    if decoded == 0:
        reason = _last_line(b"\n".join(errors[-8:])) or "ffmpeg decoded no frame"
        raise DecodeError(f"{path.name}: no decodable video frames ({reason})")


_SPAN_END = object()


def _decode_span(path: Path, settings: Settings, start_s: float, length_s: float | None,
                 out: queue.Queue, stop: threading.Event, *, split: bool,
                 frame_rate: float | None, sparse: bool, motion: MotionRule | None
                 ) -> list[bytes]:
    """Put every sample of one span, and the frames between that ``motion``
    keeps, in ``out`` as (presentation time, pixels, whether a sample, detail
    score), then ``_SPAN_END`` however it ends; return stderr's tail. The
    frames between are chosen here, as they come, for a span decoded ahead waits
    in memory: every frame of it would be 350 MB at 60 fps."""
    import subprocess

    if stop.is_set():
        out.put(_SPAN_END)
        return []
    try:
        proc = subprocess.Popen(build_command(path, settings, start_s, length_s, split,
                                              frame_rate, sparse, motion is not None),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except BaseException:
        out.put(_SPAN_END)
        raise
    # The sampling restarts where a span starts, as ffmpeg's select does.
    sampler = Sampler(settings, frame_rate, sparse) if motion else None
    last: np.ndarray | None = None
    times: queue.Queue[tuple[float, float] | None] = queue.Queue()
    tail: collections.deque[bytes] = collections.deque(maxlen=8)
    reader = threading.Thread(target=_read_stderr, args=(proc, times, tail), daemon=True)
    reader.start()
    frame_bytes = FRAME_SIZE * FRAME_SIZE
    try:
        while not stop.is_set():
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            timed = times.get(timeout=60)
            if timed is None:
                break
            pts, scene = timed
            pixels = np.frombuffer(buf, np.uint8).reshape(FRAME_SIZE, FRAME_SIZE)
            if sampler is None:  # ffmpeg selected it
                out.put((pts, pixels, True, detail_score(pixels)))
                continue
            sampled = sampler.takes(pts, scene)
            code, moved = None, True
            if motion.min_bits:
                code = motion.signature(pixels)
                moved = last is None or np.bitwise_count(code ^ last).sum() >= motion.min_bits
            if not (sampled or moved):
                continue  # most frames between samples: their detail is never needed
            score = detail_score(pixels)
            if sampled:  # a flat one is counted as decoded, then dropped
                out.put((pts, pixels, True, score))
            elif score >= DETAIL_FLOOR:
                out.put((pts, pixels, False, score))
            if score >= DETAIL_FLOOR:
                last = code
    finally:
        out.put(_SPAN_END)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        reader.join(timeout=5)
    return list(tail)


def _read_stderr(proc, times: queue.Queue, tail: collections.deque) -> None:
    """(presentation time, scene score) of each frame out, from showinfo's line
    and the metadata filter's line before it (score 0.0 when not printed)."""
    scene = 0.0
    for line in proc.stderr:
        score, match = _SCENE.search(line), _PTS.search(line)
        if score:
            scene = float(score[1])
        if match:
            times.put((float(match[1]), scene))
            scene = 0.0
        elif line.strip() and not score:
            tail.append(line.strip())
    times.put(None)
    proc.stderr.close()


def _last_line(stderr: bytes | None) -> str:
    lines = [ln for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else ""


def _rate(value) -> float | None:
    """A frame rate from ffprobe's "24000/1001" or ffmpeg's "23.98"; None for 0/0."""
    try:
        num, _, den = str(value).partition("/")
        rate = float(num) / float(den or 1)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return rate if 0 < rate <= 1000 else None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
