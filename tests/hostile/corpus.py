"""The hostile-input corpus: every kind of bad input, generated on the spot, with the
exact outcome the CLI must give for it.

Each ``Case`` names one kind of bad input, a builder that makes it (with real ffmpeg,
plain Python or a misbehaving local server) and returns the command line to run, the
exit code and a fragment of the one-line message the user must see, and what the
index must look like afterwards (unchanged, unless the case says a video or sighting
is added). ``tests/hostile/test_hostile.py`` runs the table.
"""
from __future__ import annotations

import functools
import hashlib
import html
import http.server
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from conftest import video_page

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def ffmpeg(*args: str | Path) -> None:
    subprocess.run([*FFMPEG, *map(str, args)], check=True, capture_output=True, timeout=120)


def ffprobe_json(path: Path, *args: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         check=True, capture_output=True, timeout=60)
    return json.loads(out.stdout)


# -- generated media ---------------------------------------------------------------


class Media:
    """Small clips made with ffmpeg once per session; cases derive their bad files from
    them. ``base`` is what the seeded index holds; ``other`` is a different video."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _make(self, name: str, *args: str | Path) -> Path:
        target = self.folder / name
        if not target.exists():
            partial = target.with_name(".tmp-" + name)
            ffmpeg(*args, partial)
            partial.rename(target)
        return target

    @property
    def base(self) -> Path:
        return self._make("base.mp4", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=15:d=2", *X264)

    @property
    def other(self) -> Path:
        return self._make("other.mp4", "-f", "lavfi", "-i", "testsrc=s=128x96:r=15:d=2", *X264)

    @property
    def faststart(self) -> Path:
        return self._make("faststart.mp4", "-f", "lavfi", "-i", "testsrc=s=128x96:r=15:d=3",
                          *X264, "-g", "5", "-movflags", "+faststart")

    @property
    def audio(self) -> Path:
        return self._make("audio.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                          "-c:a", "aac")

    @property
    def mp3(self) -> Path:
        return self._make("audio.mp3", "-f", "lavfi", "-i", "sine=frequency=660:duration=1",
                          "-c:a", "libmp3lame", "-f", "mp3")

    @property
    def png(self) -> Path:
        return self._make("still.png", "-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1")

    @property
    def jpeg(self) -> Path:
        return self._make("still.jpg", "-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1")

    @property
    def gif(self) -> Path:
        return self._make("small.gif", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=5:d=1")

    @property
    def h264(self) -> Path:
        # Baseline profile: the SPS patcher below handles no high-profile fields.
        return self._make("small.h264", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=10:d=1",
                          "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast",
                          "-pix_fmt", "yuv420p", "-f", "h264")

    @property
    def one_frame(self) -> Path:
        return self._make("one-frame.mp4", "-f", "lavfi", "-i", "testsrc=s=160x120:r=1",
                          "-frames:v", "1", *X264)

    @property
    def black(self) -> Path:
        return self._make("black.mp4", "-f", "lavfi", "-i", "color=black:s=160x120:r=15:d=2", *X264)

    @property
    def ten_hours(self) -> Path:
        """36000 s at 1 fps, made in about a second: 10 s of all-intra 1-fps video
        looped 3600 times with stream copy."""
        unit = self._make("unit-1fps.mp4", "-f", "lavfi", "-i", "testsrc=s=160x120:r=1:d=10",
                          *X264, "-g", "1")
        return self._make("ten-hours.mp4", "-stream_loop", "3599", "-i", unit, "-c", "copy",
                          "-movflags", "+faststart")

    @property
    def vfr(self) -> Path:
        """Real variable frame rate: 10 fps for 1 s, 2 fps for 2 s, then 25 fps (4.4 s)."""
        pts = "if(lt(N,10),N/10,if(lt(N,14),1+(N-10)/2,3+(N-14)/25))/TB"
        return self._make("vfr.mp4", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=2",
                          "-vf", f"settb=1/1000,setpts='{pts}'", "-fps_mode", "passthrough",
                          "-enc_time_base", "1:1000",
                          *X264,
                          "-video_track_timescale", "1000")

    @property
    def rotated(self) -> Path:
        """A phone-style clip: landscape pixels with a 90-degree display rotation."""
        landscape = self._make("landscape.mp4", "-f", "lavfi", "-i",
                               "testsrc2=s=240x160:r=15:d=2", *X264)
        # ffmpeg 5.1 writes the rotate tag as a display matrix only on stream copy
        return self._make("rotated.mp4", "-i", landscape, "-c", "copy",
                          "-metadata:s:v", "rotate=90")

    @property
    def upright(self) -> Path:
        """The rotated clip re-encoded as a repost would be: rotation applied to the
        pixels (ffmpeg's autorotate), no rotation tag left, a different size."""
        return self._make("upright.mp4", "-i", self.rotated, "-vf", "scale=120:180", *X264,
                          "-crf", "30")


# -- byte-level surgery ------------------------------------------------------------


def top_level_atoms(data: bytes) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each top-level MP4 box."""
    atoms, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        atoms.append((kind.decode("latin-1"), pos, size))
        if size < 8:
            break
        pos += size
    return atoms


def atom(data: bytes, kind: str) -> tuple[int, int]:
    for name, offset, size in top_level_atoms(data):
        if name == kind:
            return offset, size
    raise AssertionError(f"no {kind} atom")


def _ue_read(bits: list[int], i: int) -> tuple[int, int]:
    zeros = 0
    while bits[i] == 0:
        zeros, i = zeros + 1, i + 1
    i += 1
    value = 0
    for _ in range(zeros):
        value, i = (value << 1) | bits[i], i + 1
    return (1 << zeros) - 1 + value, i


def _ue_write(value: int) -> list[int]:
    value += 1
    return [0] * (value.bit_length() - 1) + [int(c) for c in bin(value)[2:]]


def _unescape(data: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _escape(data: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _patch_sps(rbsp: bytes, width: int, height: int) -> bytes:
    """A baseline-profile H.264 SPS with pic_width/height_in_mbs rewritten."""
    bits = [(byte >> (7 - k)) & 1 for byte in rbsp for k in range(8)]
    assert rbsp[0] == 66, "baseline profile expected"
    i = 24  # profile_idc, constraint flags, level_idc
    for _ in range(2):  # seq_parameter_set_id, log2_max_frame_num_minus4
        _, i = _ue_read(bits, i)
    poc_type, i = _ue_read(bits, i)
    assert poc_type in (0, 2)
    if poc_type == 0:
        _, i = _ue_read(bits, i)
    _, i = _ue_read(bits, i)  # max_num_ref_frames
    i += 1  # gaps_in_frame_num_value_allowed_flag
    start = i
    for _ in range(2):
        _, i = _ue_read(bits, i)
    new = bits[:start] + _ue_write(width // 16 - 1) + _ue_write(height // 16 - 1) + bits[i:]
    new += [0] * (-len(new) % 8)
    return bytes(int("".join(map(str, new[k:k + 8])), 2)
                 for k in range(0, len(new), 8)).rstrip(b"\x00")


def h264_with_size(data: bytes, width: int, height: int) -> bytes:
    """An Annex B H.264 stream whose SPS declares width x height (the slices still
    hold the small picture: only the header lies)."""
    parts = data.split(b"\x00\x00\x01")
    for n, part in enumerate(parts):
        if part and part[0] & 0x1F == 7:
            rbsp = _unescape(part[1:].rstrip(b"\x00"))
            parts[n] = part[:1] + _escape(_patch_sps(rbsp, width, height)) + b"\x00"
    return b"\x00\x00\x01".join(parts)


# -- a misbehaving web server ------------------------------------------------------


class HostileServer:
    """127.0.0.1 server with one route per way a site can misbehave, plus a listener
    that accepts connections and never says a word."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.stop = threading.Event()
        handler = functools.partial(_Handler, server_state=self)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # clients hang up on purpose
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(16)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.silent.accept()
            except OSError:
                return
            self.held.append(conn)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    @property
    def silent_url(self) -> str:
        return f"http://127.0.0.1:{self.silent.getsockname()[1]}/clip.mp4"

    def publish(self, source: Path, name: str) -> str:
        shutil.copy(source, self.root / name)
        return self.url(f"files/{name}")

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.silent.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when we close

    def __init__(self, *args: Any, server_state: HostileServer, **kwargs: Any) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, *args: Any) -> None:
        pass

    def _head(self, code: int, kind: str, length: int | None = None, **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        try:
            self._route(path)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, path: str) -> None:
        if path.startswith("/files/"):
            target = self.state.root / path.removeprefix("/files/")
            if not target.is_file():
                return self._head(404, "text/plain", 9) or self.wfile.write(b"not found")
            body = target.read_bytes()
            kind = "text/html; charset=utf-8" if target.suffix == ".html" else "video/mp4"
            self._head(200, kind, len(body), Last_Modified="Mon, 01 Apr 2024 10:00:00 GMT")
            if self.command == "GET":
                self.wfile.write(body)
        elif m := re.fullmatch(r"/status/(\d+)(?:\.mp4)?", path):
            body = f"status {m[1]}".encode()
            self._head(int(m[1]), "text/plain", len(body))
            self.wfile.write(body)
        elif path == "/loop.mp4":
            self._head(302, "text/plain", 0, Location="/loop.mp4")
        elif path in ("/ping.mp4", "/pong.mp4"):
            target = "/pong.mp4" if path == "/ping.mp4" else "/ping.mp4"
            self._head(302, "text/plain", 0, Location=target)
        elif path == "/to-closed-port.mp4":
            self._head(302, "text/plain", 0,
                       Location=f"http://127.0.0.1:{closed_port()}/clip.mp4")
        elif path == "/reset.mp4":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        elif path == "/endless.mp4":  # no Content-Length, never ends
            self._head(200, "video/mp4")
            chunk = bytes(range(256)) * 256
            while self.command == "GET" and not self.state.stop.is_set():
                self.wfile.write(chunk)
        elif path == "/trickle.mp4":  # a few bytes a second
            self._head(200, "video/mp4", 50_000_000)
            while self.command == "GET" and not self.state.stop.is_set():
                self.wfile.write(b"\x00" * 256)
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/declared-huge.mp4":  # says 10 GB, sends nothing
            self._head(200, "video/mp4", 10 * 1024**3)
        elif path == "/short.mp4":  # says 1 MB, sends 2 KB, hangs up
            self._head(200, "video/mp4", 1_000_000)
            if self.command == "GET":
                self.wfile.write(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 2036)
        elif path == "/empty.mp4":
            self._head(200, "video/mp4", 0)
        elif path == "/html-as-video.mp4":
            body = (b"<!doctype html><html><head><title>Login</title></head><body>"
                    b"<form>please log in</form></body></html>")
            self._head(200, "video/mp4", len(body))
            if self.command == "GET":
                self.wfile.write(body)
        elif path == "/no-video.html":
            body = b"<!doctype html><html><head><title>News</title></head><body>text</body></html>"
            self._head(200, "text/html; charset=utf-8", len(body))
            if self.command == "GET":
                self.wfile.write(body)
        else:
            self._head(404, "text/plain", 9)
            self.wfile.write(b"not found")


def hostile_page(server: HostileServer, slug: str, title: str, uploader: str,
                 media: Path, upload_date: str = "2024-03-01T12:30:00Z") -> str:
    """A platform-like page (``conftest.video_page``) whose title and uploader are
    ``title`` and ``uploader`` exactly. Like real sites, the JSON-LD escapes ``</`` so a
    title cannot close the script element, and the HTML escapes markup."""
    content_url = server.publish(media, f"{slug}.mp4")
    page = video_page("TITLE-SLOT", "UPLOADER-SLOT", upload_date, content_url)
    head, ld_start, rest = page.partition('<script type="application/ld+json">')
    ld, ld_end, tail = rest.partition("</script>")

    def as_json(text: str) -> str:
        return json.dumps(text).replace("</", "<\\/")[1:-1]

    ld = ld.replace("TITLE-SLOT", as_json(title)).replace("UPLOADER-SLOT", as_json(uploader))
    head, tail = (part.replace("TITLE-SLOT", html.escape(title)) for part in (head, tail))
    # (a lone surrogate cannot be UTF-8: it reaches yt-dlp only through the JSON escape)
    (server.root / f"{slug}.html").write_text(head + ld_start + ld + ld_end + tail,
                                              encoding="utf-8", errors="replace")
    return server.url(f"files/{slug}.html")


# -- the cases -----------------------------------------------------------------------


@dataclass
class Ctx:
    """What a builder gets: a scratch folder, the shared media and server, the
    seeded index and the environment the command will run with."""

    dir: Path
    media: Media
    server: HostileServer
    db: Path
    env: dict[str, str]
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def file(self, name: str | bytes, content: bytes) -> Path:
        path = Path(os.fsdecode(os.path.join(os.fsencode(self.dir), os.fsencode(name))))
        path.write_bytes(content)
        return path

    def copy(self, source: Path, name: str) -> Path:
        return self.file(name, source.read_bytes())


Verify = Callable[[Ctx, "Result"], None]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_kb: int


def command_of(args: list[str | bytes]) -> str:
    return next((a for a in args if a in ("add", "check", "report", "list", "show", "stats")), "")


def run(ctx: Ctx, args: list[str | bytes], timeout: float = 120) -> Result:
    """``python -m provenance ARGS`` with the case's environment; records wall time and
    the peak memory of the command and everything it ran (ffprobe, ffmpeg)."""
    env = {**os.environ, **ctx.env}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "provenance", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ctx.dir)
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: chunks.__setitem__(n, s.read()),
                                daemon=True)
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > timeout:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise AssertionError(f"provenance {command_of(args)} still running after "
                                 f"{timeout:.0f} s")
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(timeout=30)
    decode = lambda b: (b or b"").decode("utf-8", "surrogateescape")  # noqa: E731
    return Result(proc.returncode, decode(chunks.get("out")), decode(chunks.get("err")),
                  time.monotonic() - started, usage.ru_maxrss)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], list[str | bytes]]
    code: int
    message: str
    videos_added: int = 0
    sightings_added: int = 0
    verify: Verify | None = None
    max_seconds: float = 60.0
    max_rss_mb: float | None = None
    needs_root: bool = False
    xfail: str | None = None
    # The failure comes before any source is looked at (settings, config): one error
    # line on stderr even for `add`.
    setup_error: bool = False


def add(*sources: str | bytes | Path) -> list[str | bytes]:
    return ["add", *(s if isinstance(s, bytes) else str(s) for s in sources)]


def check(source: str | Path, *extra: str) -> list[str | bytes]:
    return ["check", str(source), *extra]


# Media files -----------------------------------------------------------------------


def _half(ctx: Ctx, source: Path, name: str) -> Path:
    data = source.read_bytes()
    return ctx.file(name, data[: len(data) // 2])


def _scrambled_atom(ctx: Ctx, source: Path, name: str, seed: int, target: str) -> Path:
    """A copy of ``source`` whose atom ``name`` keeps its header but holds noise."""
    data = bytearray(source.read_bytes())
    offset, size = atom(bytes(data), name)
    rng = random.Random(seed)
    data[offset + 8: offset + size] = bytes(rng.randrange(256) for _ in range(size - 8))
    return ctx.file(target, bytes(data))


def _broken_moov(ctx: Ctx) -> list:
    return add(_scrambled_atom(ctx, ctx.media.base, "moov", 6, "broken-moov.mp4"))


def _lying_moov_size(ctx: Ctx) -> list:
    data = bytearray(ctx.media.faststart.read_bytes())
    offset, _ = atom(bytes(data), "moov")
    data[offset: offset + 4] = struct.pack(">I", 0x7FFFFFF0)
    return check(ctx.file("moov-says-2GB.mp4", bytes(data)))


def _garbage_mdat(ctx: Ctx) -> list:
    return add(_scrambled_atom(ctx, ctx.media.faststart, "mdat", 7, "garbage-mdat.mp4"))


def _ends_mid_frame(ctx: Ctx) -> list:
    source = ctx.media.faststart
    packets = ffprobe_json(source, "-select_streams", "v", "-show_entries",
                           "packet=pos,size")["packets"]
    last = max(packets, key=lambda p: int(p["pos"]))
    cut = int(last["pos"]) + int(last["size"]) // 2
    data = source.read_bytes()
    assert cut < len(data)
    return add(ctx.file("ends-mid-frame.mp4", data[:cut]))


def _huge_gif(ctx: Ctx) -> list:
    data = bytearray(ctx.media.gif.read_bytes())
    data[6:10] = struct.pack("<HH", 16000, 16000)  # logical screen descriptor
    return add(ctx.file("16000x16000.gif", bytes(data)))


def _huge_y4m(ctx: Ctx) -> list:
    header = b"YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n"
    return add(ctx.file("16000x16000.y4m", header + b"\x80" * 4096))


def _huge_h264(ctx: Ctx) -> list:
    return add(ctx.file("16000x16000.h264",
                        h264_with_size(ctx.media.h264.read_bytes(), 16000, 16000)))


def _keyframes_of(result: Result) -> int:
    found = re.search(r"\((?:video #\d+, )?(\d+) keyframes\)", result.stdout)
    assert found, result.stdout
    return int(found[1])


def _verify_ten_hours(ctx: Ctx, result: Result) -> None:
    # 1 fps footage, 20 s hashed: about 20 keyframes, never 36000.
    assert 10 <= _keyframes_of(result) <= 24, result.stdout


def _verify_one_frame(ctx: Ctx, result: Result) -> None:
    assert _keyframes_of(result) == 1


def _run_json(ctx: Ctx, *args: str) -> dict:
    done = run(ctx, ["check", *args, "--format", "json"])
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def _verify_vfr(ctx: Ctx, result: Result) -> None:
    frames = ffprobe_json(ctx.data["source"], "-select_streams", "v", "-show_entries",
                          "frame=best_effort_timestamp_time")["frames"]
    stamps = sorted(float(f["best_effort_timestamp_time"]) for f in frames)
    gaps = {round(b - a, 2) for a, b in zip(stamps, stamps[1:])}
    assert {0.1, 0.5, 0.04} <= gaps, f"not variable frame rate: {gaps}"
    duration = stamps[-1] - stamps[0]  # 4.4 s of real time in 50 frames
    report = _run_json(ctx, str(ctx.data["source"]))
    match, *others = report["matches"]
    assert [r["kind"] for r in match["relations"]] == ["identical_file"]
    # The seeded video is the same test pattern at another frame rate: listing it
    # is right, listing anything else is not.
    assert [m["video"]["source"] for m in others] in ([], [str(ctx.media.base)]), others
    times = [k["t"] for k in report["evidence"]["keyframes"]]
    # keyframe times are real timestamps: they reach the end of the 4.4 s, which
    # 50 frames at a constant 25 fps (2 s) could not
    assert times[-1] >= duration - 0.3, times
    qa, qb = match["query_segment"]
    ra, rb = match["reference_segment"]
    assert qa <= 0.3 and qb >= duration - 0.4, match["query_segment"]
    assert ra <= 0.3 and rb >= duration - 0.4, match["reference_segment"]
    assert match["query_coverage"] >= 0.9 and match["reference_coverage"] >= 0.9


def _verify_rotated(ctx: Ctx, result: Result) -> None:
    rotation = ffprobe_json(ctx.data["source"], "-show_streams")["streams"][0]
    assert "rotation" in json.dumps(rotation) or rotation.get("tags", {}).get("rotate")
    report = _run_json(ctx, str(ctx.media.upright))
    sources = [m["video"]["source"] for m in report["matches"]]
    assert str(ctx.data["source"]) in sources, report["matches"]


def _fifo(ctx: Ctx) -> list:
    path = ctx.dir / "pipe.mp4"
    os.mkfifo(path)
    return add(path)


def _symlink_loop(ctx: Ctx) -> list:
    a, b = ctx.dir / "a.mp4", ctx.dir / "b.mp4"
    os.symlink(b, a)
    os.symlink(a, b)
    return add(a)


def _hls(ctx: Ctx) -> list:
    ctx.copy(ctx.media.base, "segment.ts")
    playlist = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
                f"{ctx.server.url('files/secret.ts')}\n#EXTINF:2.0,\nsegment.ts\n#EXT-X-ENDLIST\n")
    return add(ctx.file("playlist.mp4", playlist.encode()))


def _ffconcat(ctx: Ctx) -> list:
    text = f"ffconcat version 1.0\nfile '{ctx.media.base}'\nfile '/etc/passwd'\n"
    return add(ctx.file("concat.mp4", text.encode()))


HOSTILE_NAME = b"we ird \"quoted\" 'single' $(touch pwned) \n newline \xff\xfe latin1-\xe9.mp4"


def _hostile_path(ctx: Ctx) -> list:
    path = os.path.join(os.fsencode(ctx.dir), HOSTILE_NAME)
    with open(path, "wb") as handle:
        handle.write(ctx.media.other.read_bytes())
    ctx.data["path"] = path
    return ["add", path]


def _verify_hostile_path(ctx: Ctx, result: Result) -> None:
    assert not (ctx.dir / "pwned").exists()
    listed = run(ctx, ["list"])
    assert listed.code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2, lines  # the seeded video and this one: one line each
    assert all(LIST_LINE.match(line) for line in lines), lines
    shown = run(ctx, ["show", "2"])
    assert shown.code == 0, shown.stderr
    assert all(SHOW_LINE.match(line) for line in shown.stdout.splitlines()), shown.stdout
    assert "newline" in shown.stdout and "latin1-" in shown.stdout
    report = run(ctx, ["check", ctx.data["path"], "--format", "json"])
    assert report.code == 0, report.stderr
    (match,) = json.loads(report.stdout)["matches"]
    assert match["relations"][0]["kind"] == "identical_file"


def _option_like(ctx: Ctx) -> list:
    ctx.copy(ctx.media.other, "-rf --db evil.db.mp4")
    return ["add", "--", "-rf --db evil.db.mp4"]


def _verify_option_like(ctx: Ctx, result: Result) -> None:
    assert not (ctx.dir / "evil.db").exists()


# URLs --------------------------------------------------------------------------------


def _url(path: str) -> Callable[[Ctx], list]:
    return lambda ctx: add(ctx.server.url(path))


def _never_answers(ctx: Ctx) -> list:
    ctx.env["PROVENANCE_SOCKET_TIMEOUT"] = "2"
    return add(ctx.server.silent_url)


def _endless(ctx: Ctx) -> list:
    ctx.env["PROVENANCE_MAX_DOWNLOAD_BYTES"] = "5000000"
    return add(ctx.server.url("endless.mp4"))


def _trickle(ctx: Ctx) -> list:
    ctx.env["PROVENANCE_MAX_DOWNLOAD_SECONDS"] = "3"
    return add(ctx.server.url("trickle.mp4"))


def _dead_content_url(ctx: Ctx) -> list:
    page = video_page("Gone", "Someone", "2024-01-01", ctx.server.url("files/missing.mp4"))
    (ctx.server.root / "dead-link.html").write_text(page, encoding="utf-8")
    return add(ctx.server.url("files/dead-link.html"))


# Hostile metadata ----------------------------------------------------------------------

TAIL = "NEWLINE-TAIL"
SHOW_LINE = re.compile(
    r"^(video #\d+  sha256 [0-9a-f]{64}|  [\d.]+ s  \d+x\d+  .*|  sighting #\d+: .*"
    r"|    (uploader|title|upload time|retrieved|info\.json) +.*)$")
LIST_LINE = re.compile(r"^ +\d+ +[\d.]+ s +\d+ kf  \d+ sighting\(s\)  .*$")
TABLES = {"meta", "videos", "sightings", "frames", "feed_items", "feed_state"}


def _metadata_case(title: str, uploader: str,
                   upload_date: str = "2024-03-01T12:30:00Z") -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        slug = "post-" + hashlib.sha256(title.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        url = hostile_page(ctx.server, slug, title, uploader, ctx.media.base, upload_date)
        ctx.data.update(url=url, title=title, uploader=uploader)
        return add(url)
    return build


def _verify_metadata(ctx: Ctx, result: Result) -> None:
    url, title, uploader = ctx.data["url"], ctx.data["title"], ctx.data["uploader"]
    shown = run(ctx, ["show", "1"])
    listed = run(ctx, ["list"])
    checked = run(ctx, ["check", url])
    for done in (shown, listed, checked):
        assert done.code == 0, done.stderr
        assert "\x1b" not in done.stdout + done.stderr, "escape code reached the terminal"
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", done.stdout)
        assert not any(line.lstrip().startswith(TAIL) for line in done.stdout.splitlines())
    bad = [line for line in shown.stdout.splitlines() if not SHOW_LINE.match(line)]
    assert not bad, bad  # a field that spilled onto a line of its own
    assert len(listed.stdout.splitlines()) == 1
    assert all(LIST_LINE.match(line) for line in listed.stdout.splitlines()), listed.stdout
    assert max(map(len, shown.stdout.splitlines())) < 400  # 100 KB titles are cut
    # The JSON report keeps the exact strings (it is evidence), as yt-dlp read them.
    report = _run_json(ctx, url)
    meta = report["query"]["metadata"]
    # yt-dlp decodes HTML entities in the JSON-LD title (&amp; -> &), not in the author:
    # the exact strings are those of its .info.json, kept as evidence.
    info = json.loads(Path(meta["info_json_path"]).read_text(encoding="utf-8"))
    assert info["title"] in (title, html.unescape(title)), info["title"][:200]
    assert info["uploader"] in (uploader, html.unescape(uploader)), info["uploader"][:200]
    title, uploader = info["title"], info["uploader"]
    assert meta["title"] == title and meta["uploader"] == uploader, (meta["title"][:200],
                                                                      meta["uploader"][:200])
    sightings = report["matches"][0]["video"]["sightings"]
    assert any(s["title"] == title and s["uploader"] == uploader for s in sightings)
    with sqlite3.connect(ctx.db) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert TABLES <= names
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM videos").fetchone()[0] == 1


SQL = "'); DROP TABLE videos;-- \" OR 1=1; DELETE FROM sightings; --"
HTML = "<b onmouseover=alert(1)>bold</b> &amp; &lt;i&gt; <img src=x onerror=alert(2)>"
SCRIPT = "<script>alert(document.cookie)</script><!-- </script><script>x</script>"
ANSI = ("\x1b[2J\x1b[H\x1b[31mBREAKING\x1b[0m \x1b]0;pwned\x07 \x1b[8mhidden\x1b[28m "
        "\u202eevil\u202c \x07\x08\x00 \r\n" + TAIL)
BIG = ("100 KB title " + "x" * 1000 + " \n" + TAIL + " ") * 100
SURROGATE = "lone surrogate \ud800 here \udcff"

# Index -----------------------------------------------------------------------------------


def _corrupt_header(ctx: Ctx) -> list:
    data = bytearray(ctx.db.read_bytes())
    data[0:100] = bytes(random.Random(1).randrange(256) for _ in range(100))
    ctx.db.write_bytes(bytes(data))
    return add(ctx.media.other)


def _corrupt_pages(ctx: Ctx) -> list:
    data = bytearray(ctx.db.read_bytes())
    page = struct.unpack(">H", data[16:18])[0] or 65536
    rng = random.Random(2)
    for start in range(page, len(data), page):  # every page but the first
        data[start: start + page] = bytes(rng.randrange(256) for _ in range(page))
    ctx.db.write_bytes(bytes(data))
    return add(ctx.media.other)


def _db_text_file(ctx: Ctx) -> list:
    ctx.db.write_text("these are my notes, not a database\n" * 100)
    return add(ctx.media.other)


def _db_truncated(ctx: Ctx) -> list:
    data = ctx.db.read_bytes()
    ctx.db.write_bytes(data[: len(data) // 2 + 100])
    return add(ctx.media.other)


def _sql(path: Path, *statements: str) -> None:
    """Run statements and close the connection (its WAL checkpointed into the file)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def _newer_schema(ctx: Ctx) -> list:
    _sql(ctx.db, "PRAGMA user_version = 99")
    return add(ctx.media.other)


def _missing_table(ctx: Ctx) -> list:
    _sql(ctx.db, "DROP TABLE frames")
    return add(ctx.media.other)


def _foreign_db(ctx: Ctx) -> list:
    ctx.db.unlink()
    _sql(ctx.db, "CREATE TABLE meta (id INTEGER PRIMARY KEY, payload BLOB)",
         "INSERT INTO meta VALUES (1, x'00ff')")
    return add(ctx.media.other)


def _db_is_directory(ctx: Ctx) -> list:
    ctx.db.unlink()
    ctx.db.mkdir()
    return add(ctx.media.other)


def _locked(ctx: Ctx) -> list:
    """Another process holds the write lock (BEGIN EXCLUSIVE) for the whole command."""
    code = ("import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "db.execute(\"INSERT INTO meta VALUES ('holder', 'x')\")\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "db.execute('ROLLBACK')\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(ctx.db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"

    def release() -> None:
        holder.stdin.close()
        holder.wait(timeout=30)

    ctx.cleanups.append(release)
    ctx.env["PROVENANCE_BUSY_TIMEOUT"] = "2"
    return add(ctx.media.other)


def _mount_tmpfs(ctx: Ctx, name: str, size: str) -> Path:
    mount = ctx.dir / name
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                   check=True, capture_output=True)
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", str(mount)], check=False,
                                               capture_output=True))
    return mount


def _move_db(ctx: Ctx, folder: Path) -> None:
    target = folder / "index.db"
    shutil.copy(ctx.db, target)
    ctx.db = target
    ctx.env["PROVENANCE_DB"] = str(target)


def _read_only(ctx: Ctx) -> list:
    mount = _mount_tmpfs(ctx, "ro", "4m")
    _move_db(ctx, mount)
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
    return add(ctx.media.other)


def _fill(mount: Path, leave: int) -> None:
    """Fill the file system at ``mount`` up to ``leave`` bytes of free space."""
    stats = os.statvfs(mount)
    size = max(0, stats.f_bavail * stats.f_frsize - leave)
    try:
        with open(mount / "filler", "wb") as handle:
            handle.write(b"\0" * size)
            while leave == 0:  # to the last byte
                handle.write(b"\0" * 512)
                handle.flush()
    except OSError:
        pass  # full


def _disk_full(ctx: Ctx) -> list:
    """Room to open the index (its 32 KB -shm), none for the new video's rows."""
    mount = _mount_tmpfs(ctx, "full", "1m")
    _move_db(ctx, mount)
    _fill(mount, leave=40 * 1024)
    return add(ctx.media.other)


def _disk_completely_full(ctx: Ctx) -> list:
    mount = _mount_tmpfs(ctx, "full", "1m")
    _move_db(ctx, mount)
    _fill(mount, leave=0)
    return add(ctx.media.other)


# Saved reports and settings -----------------------------------------------------------


def _report_file(ctx: Ctx, name: str, mutate: Callable[[dict], Any] | None,
                 text: str | None = None) -> list:
    if text is None:
        report = json.loads(json.dumps(ctx.data["report"]))
        mutate(report)
        text = json.dumps(report)
    return ["report", str(ctx.file(name, text.encode()))]


def _report_case(mutate: Callable[[dict], Any] | None = None,
                 text: str | None = None) -> Callable[[Ctx], list]:
    return lambda ctx: _report_file(ctx, "saved.json", mutate, text)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(report: dict) -> None:
        *parents, last = path.split(".")
        node = report
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
    return mutate


def _env_case(name: str, value: str) -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        ctx.env[name] = value
        return add(ctx.media.other)
    return build


def _bad_toml(ctx: Ctx) -> list:
    config = ctx.file("feeds.toml", b"[settings\nmax_duration_s = = 3\n")
    return ["--config", str(config), "add", str(ctx.media.other)]


CASES: list[Case] = [
    # -- media files ------------------------------------------------------------------
    Case("zero-byte-mkv", lambda c: add(c.file("empty.mkv", b"")), 3, "empty file (0 bytes)"),
    Case("truncated-mp4-half", lambda c: add(_half(c, c.media.base, "half.mp4")), 5,
         "not a readable media file"),
    Case("truncated-mp4-half-check", lambda c: check(_half(c, c.media.base, "half.mp4")), 5,
         "not a readable media file"),
    Case("truncated-faststart-mp4-half", lambda c: add(_half(c, c.media.faststart, "half-fs.mp4")),
         0, "added", videos_added=1, sightings_added=1),
    Case("broken-moov", _broken_moov, 5, "no video stream"),
    # ffmpeg reads what is there: a moov claiming 2 GB in a 20 KB file still checks
    Case("moov-size-lies", _lying_moov_size, 0, "provenance check"),
    Case("garbage-mdat", _garbage_mdat, 5, "no decodable video frames"),
    Case("ends-mid-frame", _ends_mid_frame, 0, "added", videos_added=1, sightings_added=1),
    Case("audio-only-m4a", lambda c: add(c.media.audio), 5, "no video stream"),
    Case("audio-mp3-named-mp4", lambda c: add(c.copy(c.media.mp3, "song.mp4")), 5,
         "no video stream"),
    Case("still-png", lambda c: add(c.media.png), 5, "a still image"),
    Case("still-jpeg", lambda c: check(c.media.jpeg), 5, "a still image"),
    Case("png-named-mp4", lambda c: add(c.copy(c.media.png, "photo.mp4")), 5, "a still image"),
    Case("text-named-mp4", lambda c: add(c.file("notes.mp4", b"meeting notes\n" * 40)), 5,
         "not a readable media file"),
    Case("html-named-mp4", lambda c: add(c.file("page.mp4", b"<!doctype html><html><body>"
                                                   b"<video src=x></video></body></html>\n")),
         5, "not a readable media file"),
    Case("random-bytes-mp4", lambda c: add(c.file("noise.mp4", random.Random(3).randbytes(65536))),
         5, "not a readable media file"),
    Case("one-frame-video", lambda c: add(c.media.one_frame), 0, "added", videos_added=1,
         sightings_added=1, verify=_verify_one_frame),
    Case("all-black-video", lambda c: add(c.media.black), 5, "black or flat"),
    Case("16000x16000-gif", _huge_gif, 3, "over the limit of 67108864 pixels", max_seconds=15,
         max_rss_mb=600),
    Case("16000x16000-y4m", _huge_y4m, 3, "over the limit of 67108864 pixels", max_seconds=15,
         max_rss_mb=600),
    Case("16000x16000-h264", _huge_h264, 3, "over the limit of 67108864 pixels", max_seconds=10,
         max_rss_mb=600),
    Case("ten-hour-video", lambda c: c.env.update(PROVENANCE_MAX_DURATION="20")
         or add(c.media.ten_hours), 0, "added", videos_added=1, sightings_added=1,
         verify=_verify_ten_hours, max_seconds=30),
    Case("variable-frame-rate", lambda c: c.data.update(source=c.media.vfr) or add(c.media.vfr),
         0, "added", videos_added=1, sightings_added=1, verify=_verify_vfr),
    Case("rotated-phone-clip", lambda c: c.data.update(source=c.media.rotated)
         or add(c.media.rotated), 0, "added", videos_added=1, sightings_added=1,
         verify=_verify_rotated),
    Case("hostile-file-name", _hostile_path, 0, "added", videos_added=1, sightings_added=1,
         verify=_verify_hostile_path),
    Case("option-like-file-name", _option_like, 0, "added", videos_added=1, sightings_added=1,
         verify=_verify_option_like),
    Case("directory-as-source", lambda c: add(c.dir), 3, "not a regular file"),
    Case("fifo-as-source", _fifo, 3, "not a regular file", max_seconds=20),
    Case("dev-zero-as-source", lambda c: add("/dev/zero"), 3, "not a regular file"),
    Case("symlink-loop", _symlink_loop, 3, "no such file"),
    Case("hls-playlist-named-mp4", _hls, 5, "not a video container (hls)"),
    Case("ffconcat-list-named-mp4", _ffconcat, 5, "not a readable media file"),
    # -- URLs -------------------------------------------------------------------------
    Case("http-404", _url("status/404.mp4"), 4, "404"),
    Case("http-500", _url("status/500.mp4"), 4, "500"),
    Case("http-403-check", lambda c: check(c.server.url("status/403.mp4")), 4, "403"),
    Case("redirect-to-refused-port", _url("to-closed-port.mp4"), 4, "refused"),
    Case("connection-reset", _url("reset.mp4"), 4, "reset"),
    Case("server-never-answers", _never_answers, 4, "timed out", max_seconds=30),
    Case("redirect-loop", _url("loop.mp4"), 4, "redirect"),
    Case("redirect-ping-pong", _url("ping.mp4"), 4, "redirect"),
    Case("endless-body-no-length", _endless, 4, "size cap", max_seconds=60),
    Case("trickling-server", _trickle, 4, "took over 3 s", max_seconds=30),
    Case("declared-10GB", _url("declared-huge.mp4"), 4, "size cap"),
    Case("body-shorter-than-declared", _url("short.mp4"), 4, "more expected"),
    Case("empty-200-response", _url("empty.mp4"), 4, "Did not get any data blocks"),
    Case("html-served-as-video-mp4", _url("html-as-video.mp4"), 5, "not a readable media file"),
    Case("page-without-video", _url("no-video.html"), 4, "Unsupported URL"),
    Case("page-with-dead-video-link", _dead_content_url, 4, "404"),
    Case("unsupported-scheme-rtsp", lambda c: add("rtsp://127.0.0.1:554/live"), 3,
         "unsupported URL scheme 'rtsp'"),
    Case("unsupported-scheme-check", lambda c: check("gopher://127.0.0.1/clip.mp4"), 3,
         "unsupported URL scheme 'gopher'"),
    Case("file-url-to-etc-passwd", lambda c: add("file://localhost/etc/passwd"), 3,
         "pass the local path instead"),
    Case("file-url-uppercase", lambda c: check(f"FILE://{c.media.base}"), 3,
         "pass the local path instead"),
    Case("data-url", lambda c: add("data:video/mp4;base64,AAAAIGZ0eXBpc29t"), 3, "no such file"),
    # -- hostile metadata (the page's title and uploader) --------------------------------
    Case("metadata-html", _metadata_case(HTML, HTML), 0, "new sighting", sightings_added=1,
         verify=_verify_metadata),
    Case("metadata-script-tag", _metadata_case(SCRIPT, "uploader " + SCRIPT), 0, "new sighting",
         sightings_added=1, verify=_verify_metadata),
    Case("metadata-sql-injection", _metadata_case(SQL, SQL), 0, "new sighting",
         sightings_added=1, verify=_verify_metadata),
    Case("metadata-ansi-escapes", _metadata_case(ANSI, "uploader " + ANSI), 0, "new sighting",
         sightings_added=1, verify=_verify_metadata),
    Case("metadata-100KB", _metadata_case(BIG, BIG), 0, "new sighting", sightings_added=1,
         verify=_verify_metadata),
    # yt-dlp itself gives up on these two (it cannot write the title, or turn the time
    # into a date): a fetch failure, cleanly reported.
    Case("metadata-lone-surrogate", _metadata_case(SURROGATE, SURROGATE), 4,
         "download failed (UnicodeEncodeError"),
    Case("metadata-upload-year-10000", _metadata_case("Far future", "Time traveller",
                                                      "9999-12-31T23:59:59-05:00"),
         4, "download failed (OverflowError"),
    # -- the index --------------------------------------------------------------------
    Case("db-header-corrupted", _corrupt_header, 6, "is corrupt or not a provenance index"),
    Case("db-pages-corrupted", _corrupt_pages, 6, "corrupt"),
    Case("db-is-a-text-file", _db_text_file, 6, "is corrupt or not a provenance index"),
    Case("db-truncated", _db_truncated, 6, "corrupt"),
    Case("db-newer-schema", _newer_schema, 6, "newer than this provenance understands"),
    Case("db-missing-table", _missing_table, 6, "no such table: frames"),
    Case("db-of-another-program", _foreign_db, 6, "provenance: error: index "),
    Case("db-path-is-a-directory", _db_is_directory, 6, "provenance: error: index "),
    Case("db-locked-by-writer", _locked, 6, "is busy", max_seconds=12),
    Case("db-read-only-mount", _read_only, 6, "is read-only", needs_root=True),
    Case("db-disk-full", _disk_full, 6, "the disk is full; nothing was written",
         needs_root=True),
    Case("db-disk-completely-full", _disk_completely_full, 6,
         "the disk is full; nothing was written", needs_root=True),
    # -- saved reports and settings -------------------------------------------------
    Case("report-not-json", _report_case(text="{not json"), 3, "not a readable JSON report"),
    Case("report-wrong-schema", _report_case(_set("schema_version", "9.0")), 3,
         "not a provenance report of schema"),
    Case("report-field-wrong-type", _report_case(_set("query.duration_s", "long")), 3,
         "not a valid provenance report: query.duration_s"),
    Case("report-huge-number", _report_case(_set("query.duration_s", 10**400)), 3,
         "malformed report"),
    Case("report-deeply-nested", _report_case(text="[" * 100_000 + "]" * 100_000), 3,
         "not a readable JSON report"),
    Case("config-bad-toml", _bad_toml, 3, "config file", setup_error=True),
    Case("env-duration-not-a-number", _env_case("PROVENANCE_MAX_DURATION", "ten minutes"), 3,
         "is not a valid float", setup_error=True),
    Case("env-duration-negative", _env_case("PROVENANCE_MAX_DURATION", "-5"), 3,
         "setting max_duration_s: '-5'", setup_error=True),
    Case("env-duration-nan", _env_case("PROVENANCE_MAX_DURATION", "nan"), 3,
         "setting max_duration_s: 'nan'", setup_error=True),
]
