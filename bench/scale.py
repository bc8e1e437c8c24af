"""How `provenance check` scales with the size of the index (issue 7).

Builds synthetic indexes outside the repo (default ~/.cache/provenance-bench/scale)
with realistic structure: videos of ~100 keyframes whose PDQ hashes drift a few bits
from frame to frame (runs of near-identical frames), a few flat frames, and the real
sample clips planted so recall can be checked. Then times the real CLI,
`provenance check` of a 60 s 720p clip made from the corpus, from process start to
report, several runs each, and prints medians, memory and bytes per indexed frame.

Run:  .venv/bin/python bench/scale.py [--sizes 100000,1000000,10000000] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.fetch import FetchedMedia, SourceMetadata  # noqa: E402
from provenance.index import Index  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
FRAMES_PER_VIDEO = 100


def synthetic_index(path: Path, frames: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    with Index(path, default_scheme="pdq-256-v1") as index:
        for video in range(frames // FRAMES_PER_VIDEO):
            base = rng.integers(0, 2**64, size=4, dtype=np.uint64)
            hashes = np.empty((FRAMES_PER_VIDEO, 4), np.uint64)
            current = base.copy()
            for i in range(FRAMES_PER_VIDEO):
                if i % 25 == 0:  # a new shot
                    current = rng.integers(0, 2**64, size=4, dtype=np.uint64)
                flips = rng.integers(0, 256, size=3)
                for bit in flips:
                    current[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
                hashes[i] = current
            hashes[::50] = 0  # a few flat frames
            meta = SourceMetadata(source=f"synthetic://{video}", retrieved_at="2026-01-01T00:00:00Z")
            media = FetchedMedia(Path(f"/synthetic/{video}.mp4"), f"{video:064x}", 1, meta)
            times = [i * 0.25 for i in range(FRAMES_PER_VIDEO)]
            index.add_video(media, duration_s=25.0, width=640, height=360, container_tags={},
                            times=times, details=[50.0] * FRAMES_PER_VIDEO, hashes=hashes)


def query_clip(cache: Path) -> Path:
    clip = cache / "bbb60_720p.mp4"
    if not clip.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "1", "-i",
                        str(CORPUS / "moviepy/big_buck_bunny_0_30.webm"), "-t", "60", "-an",
                        "-c:v", "libx264", "-preset", "fast", "-b:v", "3M", "-pix_fmt", "yuv420p",
                        str(clip)], check=True)
    return clip


def timed_check(db: Path, clip: Path, runs: int) -> tuple[float, float, int]:
    walls, rss = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), "check",
                               str(clip), "--format", "json"], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss = max(rss, usage.ru_maxrss)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        matches = len(json.loads(done.stdout)["matches"])
    return statistics.median(walls), rss / 1024, matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/provenance-bench/scale")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    clip = query_clip(args.cache)
    print(f"{'frames':>10} {'build s':>8} {'check median s':>15} {'max RSS MB':>11} "
          f"{'bytes/frame':>12} {'matches':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        db = args.cache / f"index-{size}.db"
        build = 0.0
        if not db.exists():
            start = time.perf_counter()
            synthetic_index(db, size)
            subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), "add",
                            str(clip), *map(str, (ROOT / "samples").glob("*.mp4"))],
                           check=True, capture_output=True)
            build = time.perf_counter() - start
        with Index(db) as index:
            index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wall, rss, matches = timed_check(db, clip, args.runs)
        per_frame = os.path.getsize(db) / size
        print(f"{size:>10} {build:>8.1f} {wall:>15.2f} {rss:>11.0f} {per_frame:>12.1f} {matches:>8}")


if __name__ == "__main__":
    main()
