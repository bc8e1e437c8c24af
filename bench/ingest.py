"""Ingest speed (issue 7): `provenance add` of local 720p H.264 clips against vPDQ.

Clips (made once from the shared corpus into ~/.cache/provenance-bench/ingest): 60 s
at 720p, H.264 (x264 preset fast, 2 B-frames as most platforms ship):
- `bbb_3M`: Big Buck Bunny, 1280x720, 3 Mbit/s;
- `tos_19M`: Tears of Steel, 1280x720, 19 Mbit/s (vPDQ's own slow case);
- `flies_vertical`: flies, 720x1280 (a vertical phone clip), 3 Mbit/s.

Per clip, medians of --runs: the wall time of `provenance add` (process start to
exit, a fresh index each run, the default sampling: a frame every 0.125 s plus
scene cuts), as a multiple of realtime; and vPDQ's `computeHash` (1 hash/s, its
default, in its own process) on the same file in the same run. Then one batch:
`provenance add` of all clips at once (two are hashed at a time). Both use this machine's two cores as
they see fit: vPDQ decodes with its own thread count (0 = ffmpeg's choice).

Run:  .venv/bin/python bench/ingest.py [--runs 3]    (vPDQ needs `make bench-deps`)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
CLIPS = {
    "bbb_3M": ("moviepy/big_buck_bunny_0_30.webm", "1280:720", "3M"),
    "tos_19M": ("mdn/tears-of-steel-battle-clip-medium.webm", "1280:720", "19M"),
    "flies_vertical": ("sleap/flies_120s.mp4", "720:1280", "3M"),
}
VPDQ = ("import sys, time, vpdq\n"
        "start = time.perf_counter()\n"
        "vpdq.computeHash(sys.argv[1], seconds_per_hash=1.0, thread_count=0)\n"
        "print(time.perf_counter() - start)\n")


def make_clip(cache: Path, name: str) -> Path:
    source, size, rate = CLIPS[name]
    out = cache / f"{name}.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1",
                        "-i", str(CORPUS / source), "-t", "60", "-an", "-vf",
                        f"scale={size}:force_original_aspect_ratio=increase,crop={size}",
                        "-c:v", "libx264", "-preset", "fast", "-bf", "2", "-b:v", rate,
                        "-maxrate", rate, "-bufsize", rate, "-pix_fmt", "yuv420p", str(out)],
                       check=True)
    return out


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def add_seconds(clips: list[Path]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return timed([sys.executable, "-m", "provenance", "--db", f"{tmp}/i.db", "add",
                      *map(str, clips)])


def vpdq_seconds(clip: Path) -> float | None:
    done = subprocess.run([sys.executable, "-c", VPDQ, str(clip)], capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/provenance-bench/ingest")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    clips = {name: make_clip(args.cache, name) for name in CLIPS}
    print(f"{'clip':<16} {'add s':>7} {'x realtime':>10} {'vPDQ s':>7} {'x realtime':>10} "
          f"{'add vs vPDQ':>11}")
    for name, clip in clips.items():
        ours = statistics.median(add_seconds([clip]) for _ in range(args.runs))
        peer_runs = [vpdq_seconds(clip) for _ in range(args.runs)]
        peer = statistics.median(p for p in peer_runs if p) if all(peer_runs) else None
        peer_text = (f"{peer:>7.2f} {60 / peer:>9.1f}x {peer / ours:>10.2f}x" if peer
                     else f"{'-':>7} {'-':>10} {'-':>11}")
        print(f"{name:<16} {ours:>7.2f} {60 / ours:>9.1f}x {peer_text}", flush=True)
    batch = statistics.median(add_seconds(list(clips.values())) for _ in range(args.runs))
    total = 60 * len(clips)
    print(f"{'batch of ' + str(len(clips)):<16} {batch:>7.2f} {total / batch:>9.1f}x")
    print(f"medians of {args.runs} runs; provenance timed from process start, vPDQ its "
          "computeHash call alone")


if __name__ == "__main__":
    main()
