"""How `provenance check` scales with the size of the index (issue 7).

For each size (default 1 M, 3 M and 10 M stored frame hashes: rows of the frames
table, what the search scans; a real video stores three per keyframe, its footage,
its centre and its centred 9:16 or 16:9 part, four for 4:3 or square footage, and
up to four more when padding was found) it builds, outside the
repo (default ~/.cache/provenance-bench/scale), a synthetic index with realistic
structure: videos of 100 hashes whose PDQ hashes drift a few bits from one
frame to the next within a shot (runs of near-identical frames), a new shot every
25 frames, a few flat frames, and real clips planted (the bundled samples and
the query clip itself) so recall can be checked. Then it prints:

- the first check's rebuild of the on-disk search structure from SQLite;
- `provenance check` of a 60 s 720p clip through the real CLI, process start to
  report, median of --runs, and its peak memory (the Python process's VmHWM,
  memory-mapped index pages included; ffmpeg's own not);
- the search alone (open the structure + range search of the query's hashes,
  in-process, each against the stored hashes of its class as `check` searches:
  centre views against centre hashes), median of --runs, against the peer: a
  brute-force numpy scan of the same hashes (the previous design, minus reading
  SQLite), with a check that both return exactly the same matches;
- bytes per indexed frame: SQLite, the search structure, total.

Run:  make bench-speed
      .venv/bin/python bench/scale.py [--sizes 1000000,3000000,10000000] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance import pipeline  # noqa: E402
from provenance.config import load_settings  # noqa: E402
from provenance.frame_search import FrameSearch  # noqa: E402
from provenance.hamming import HammingSearch  # noqa: E402
from provenance.hashing import hash_video, hasher_for  # noqa: E402
from provenance.index import CENTRE_VIEWS, Index  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
FRAMES_PER_VIDEO = 100
VIDEOS_PER_TRANSACTION = 2_000


def synthetic_index(path: Path, frames: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    videos = frames // FRAMES_PER_VIDEO
    times = np.arange(FRAMES_PER_VIDEO) * 0.25
    with Index(path, default_scheme="pdq-256-v1") as index:
        db = index.db
        for first in range(0, videos, VIDEOS_PER_TRANSACTION):
            count = min(VIDEOS_PER_TRANSACTION, videos - first)
            # Per shot of 25 frames a random start, then 3 random bit flips per frame.
            shots = rng.integers(0, 2**64, size=(count, FRAMES_PER_VIDEO // 25, 4), dtype=np.uint64)
            hashes = np.repeat(shots, 25, axis=1)
            flips = rng.integers(0, 256, size=(count, FRAMES_PER_VIDEO, 3))
            drift = np.zeros_like(hashes)
            for k in range(3):
                word, bit = flips[..., k] // 64, (flips[..., k] % 64).astype(np.uint64)
                for w in range(4):
                    drift[..., w] ^= np.where(word == w, np.uint64(1) << bit, np.uint64(0))
            within_shot = np.bitwise_xor.accumulate(drift.reshape(count, 4, 25, 4), axis=2)
            hashes ^= within_shot.reshape(count, FRAMES_PER_VIDEO, 4)
            hashes[:, ::50] = 0  # a few flat frames
            signed = hashes.view(np.int64)
            with index.transaction():
                for v in range(count):
                    number = first + v
                    cursor = db.execute(
                        "INSERT INTO videos (sha256, size_bytes, duration_s, width, height,"
                        " media_path, container_tags, keyframe_count, added_at)"
                        " VALUES (?, 1, 25.0, 640, 360, ?, '{}', ?, '2026-01-01T00:00:00Z')",
                        (f"{number:064x}", f"/synthetic/{number}.mp4", FRAMES_PER_VIDEO))
                    video_id = cursor.lastrowid
                    db.executemany(
                        "INSERT INTO frames (video_id, seq, t, detail, h0, h1, h2, h3, view)"
                        " VALUES (?, ?, ?, 50.0, ?, ?, ?, ?, 0)",
                        [(video_id, i, t, *row) for i, (t, row) in
                         enumerate(zip(times.tolist(), signed[v].tolist()))])
                    db.execute("INSERT INTO sightings (video_id, source, retrieved_at) VALUES"
                               " (?, ?, '2026-01-01T00:00:00Z')", (video_id, f"synthetic://{number}"))
                    db.execute("INSERT INTO frame_log (video_id, change) VALUES (?, 'add')",
                               (video_id,))


def query_clip(cache: Path) -> Path:
    clip = cache / "bbb60_720p.mp4"
    if not clip.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "1", "-i",
                        str(CORPUS / "moviepy/big_buck_bunny_0_30.webm"), "-t", "60", "-an",
                        "-c:v", "libx264", "-preset", "fast", "-b:v", "3M", "-pix_fmt", "yuv420p",
                        str(clip)], check=True)
    return clip


# The CLI, reporting its own peak memory on the way out. (getrusage's figure for
# children would include this bench's own memory: Linux carries a process's
# high-water mark across fork and exec.)
_CLI_WITH_PEAK = ("import atexit, sys\n"
                  "def peak():\n"
                  "    for line in open('/proc/self/status'):\n"
                  "        if line.startswith('VmHWM'): sys.stderr.write('PEAK ' + line)\n"
                  "atexit.register(peak)\n"
                  "from provenance.cli import main\n"
                  "main(prog_name='provenance')\n")


def timed_checks(db: Path, clip: Path, runs: int) -> tuple[list[float], float, list[str]]:
    walls, peak_kb, matched = [], 0, []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CLI_WITH_PEAK, "--db", str(db), "check",
                               str(clip), "--format", "json"], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        peak_kb = max(peak_kb, max(int(line.split()[2]) for line in done.stderr.splitlines()
                                   if line.startswith("PEAK ")))
        matched = [m["video"]["source"] for m in json.loads(done.stdout)["matches"]]
    return walls, peak_kb / 1024, matched


def query_hashes(db: Path, clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """The query's hashes, all views stacked as `check` searches them, and whether
    each is of a centre view (met only by the stored centre hashes)."""
    settings = load_settings(db_path=db)
    with Index(db) as index:
        media = pipeline.fetch(str(clip), settings)
        hashed = hash_video(media, settings, hasher_for(index.scheme))
    keep = pipeline.query_rows(hashed, settings)
    return (np.concatenate([hashed.views[v.name][keep] for v in hashed.view_specs]),
            np.repeat([v.of_centre for v in hashed.view_specs], len(keep)))


def search_timings(db: Path, queries: np.ndarray, centre: np.ndarray, runs: int,
                   brute: bool) -> dict:
    opened, searched, found = [], [], None
    for _ in range(runs):
        with Index(db) as index:
            start = time.perf_counter()
            search = FrameSearch.open(index)
            middle = time.perf_counter()
            found = search.range_search(queries, 31, centre=centre)
            searched.append(time.perf_counter() - middle)
            opened.append(middle - start)
    result = {"open_ms": statistics.median(opened) * 1000,
              "search_s": statistics.median(searched), "pairs": len(found.distances)}
    if brute:
        hashes = np.concatenate([np.asarray(s.hashes) for s in search.segments])
        video_ids = np.concatenate([np.asarray(s.video_ids) for s in search.segments])
        start = time.perf_counter()
        q, r, d = HammingSearch(hashes).range_search(queries, 31)
        result["brute_s"] = time.perf_counter() - start
        views = np.concatenate([np.asarray(s.views) for s in search.segments])
        same = np.isin(views[r], CENTRE_VIEWS) == centre[q]
        q, r, d = q[same], r[same], d[same]
        mine = sorted(zip(found.query_rows.tolist(), found.video_ids.tolist(), found.distances.tolist()))
        theirs = sorted(zip(q.tolist(), video_ids[r].astype(np.int64).tolist(), d.tolist()))
        result["exact"] = mine == theirs
    return result


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--brute-max", type=int, default=3_000_000,
                        help="largest size at which the brute-force peer also runs")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/provenance-bench/scale")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    clip = query_clip(args.cache)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        db = args.cache / f"index-{size}.db"
        build = rebuild = None
        if not db.exists():
            start = time.perf_counter()
            synthetic_index(db, size)
            subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), "add",
                            str(clip), *map(str, sorted((ROOT / "samples").glob("*.mp4")))],
                           check=True, capture_output=True)
            build = time.perf_counter() - start
        with Index(db) as index:
            index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            frames = index.db.execute("SELECT count(*) FROM frames").fetchone()[0]
        search_dir = Path(str(db) + ".search")
        shutil.rmtree(search_dir, ignore_errors=True)
        with Index(db) as index:
            start = time.perf_counter()
            FrameSearch.open(index)
            rebuild = time.perf_counter() - start
        queries, centre = query_hashes(db, clip)
        timing = search_timings(db, queries, centre, args.runs, brute=size <= args.brute_max)
        walls, rss, matched = timed_checks(db, clip, args.runs)
        row = {"frames": frames, "build_s": build, "rebuild_s": rebuild,
               "check_median_s": statistics.median(walls), "check_runs_s": walls,
               "check_max_rss_mb": rss, "query_hashes": len(queries), **timing,
               "query_clip_found": any(s.endswith(clip.name) for s in matched),
               "matches": len(matched),
               "sqlite_bytes_per_frame": os.path.getsize(db) / frames,
               "search_bytes_per_frame": folder_bytes(search_dir) / frames}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\n{'frames':>10} {'rebuild s':>9} {'check s':>8} {'RSS MB':>7} {'open ms':>8} "
          f"{'search s':>9} {'brute s':>8} {'exact':>6} {'found':>6} {'B/frame sqlite+search':>22}")
    for r in rows:
        brute = f"{r['brute_s']:.2f}" if "brute_s" in r else "-"
        exact = str(r.get("exact", "-"))
        print(f"{r['frames']:>10} {r['rebuild_s']:>9.1f} {r['check_median_s']:>8.2f} "
              f"{r['check_max_rss_mb']:>7.0f} {r['open_ms']:>8.1f} {r['search_s']:>9.3f} "
              f"{brute:>8} {exact:>6} {str(r['query_clip_found']):>6} "
              f"{r['sqlite_bytes_per_frame']:>10.1f} + {r['search_bytes_per_frame']:.1f}")
    print(f"query: {clip.name}, {rows[0]['query_hashes'] if rows else 0} query hashes "
          f"(all views), radius 31; medians of {args.runs} runs")


if __name__ == "__main__":
    main()
