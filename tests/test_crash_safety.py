"""Crash safety (issue 6): `provenance add` killed with SIGKILL at random points of a
batch never leaves a broken or half-written index, and never loses a video it said
it had added.

24 runs, each adding four small clips (the first one carried over from the previous
run, so "already indexed" and "added" both get killed); the delay before the kill is
drawn from 0 to the measured duration of an uninterrupted add, so kills land before
the index opens, during migrations (every sixth run starts a new index), while
ffmpeg decodes, between videos and inside the write transaction. After every kill:
the index opens, passes PRAGMA integrity_check, holds every video whose `added` line
was printed, and each video row has exactly keyframe_count keyframe rows (and any
second view of them complete) and at least one sighting; and the on-disk search
structure (written at the end of every add, so also killed mid-write) finds
exactly what a full scan of SQLite finds.
"""
from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import numpy as np
from hostile import half_indexed_videos, say

from provenance.frame_search import FrameSearch
from provenance.hamming import HammingSearch
from provenance.index import Index

RUNS = 24
EXTRA_RUNS = 12
PER_RUN = 4
SEED = int(os.environ.get("PROVENANCE_CRASH_SEED", "20240601"))


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """RUNS * (PER_RUN - 1) + 1 distinct files: four encoded clips, remuxed with a
    different tag each (a different file, so a different video, at no encoding cost)."""
    folder = tmp_path_factory.mktemp("crash-clips")
    bases = []
    for n in range(PER_RUN):
        base = folder / f"base{n}.mp4"
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={96 + 32 * n}x{72 + 24 * n}:r=15:d=1.5",
                "-vf", f"hue=h={90 * n}", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", base)
        bases.append(base)
    out = []
    for i in range(RUNS * (PER_RUN - 1) + 1):
        target = folder / f"clip{i:03d}.mp4"
        _ffmpeg("-i", bases[i % PER_RUN], "-c", "copy", "-metadata", f"comment=copy {i}", target)
        out.append(target)
    return out


def _command(db: Path, sources: list[Path]) -> list[str]:
    return [sys.executable, "-m", "provenance", "--db", str(db), "add", *map(str, sources)]


def _check_index(db: Path, printed_added: set[str]) -> dict[str, int]:
    """The index after a kill: opens, is intact, lost nothing it confirmed, holds no
    half-indexed video. Returns counts for the summary."""
    if not db.exists():
        assert not printed_added
        return {"videos": 0}
    conn = sqlite3.connect(db, timeout=30)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "videos" not in tables:  # killed before the first migration committed
            assert not printed_added
            return {"videos": 0}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert version >= 1
        sources = {r[0] for r in conn.execute("SELECT source FROM sightings")}
        lost = printed_added - sources
        assert not lost, f"printed 'added' but not in the index: {sorted(lost)}"
        half = half_indexed_videos(conn)
        assert not half, f"half-indexed (id, keyframe_count, keyframes, frames, sightings): {half}"
        orphans = conn.execute("SELECT count(*) FROM frames WHERE video_id NOT IN"
                               " (SELECT id FROM videos)").fetchone()[0]
        orphans += conn.execute("SELECT count(*) FROM sightings WHERE video_id NOT IN"
                                " (SELECT id FROM videos)").fetchone()[0]
        assert orphans == 0
        videos = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
    finally:
        conn.close()
    with Index(db) as index:
        frames = index.frame_arrays()
        if len(frames.hashes):
            queries = frames.hashes[::3] ^ np.uint64(0b1011)  # 3 bits from indexed frames
            q, r, d = HammingSearch(frames.hashes).range_search(queries, 31)
            found = FrameSearch.open(index).range_search(queries, 31)
            assert sorted(zip(found.query_rows.tolist(), found.video_ids.tolist(),
                              found.distances.tolist())) == \
                sorted(zip(q.tolist(), frames.video_ids[r].tolist(), d.tolist()))
    return {"videos": videos}


def test_sigkill_during_add_never_corrupts_or_loses(clips, tmp_path, request):
    rng = random.Random(SEED)
    started = time.monotonic()
    # How long an uninterrupted add of one batch takes here (the kill window): the
    # slower of two, so that the window covers the whole add on a busy machine.
    # Batches hash in parallel, so results arrive close together: half the kills are
    # aimed at the stretch between the first and the last "added" line.
    typical, reporting = 0.0, (0.0, 0.0)
    for attempt in range(2):
        t0 = time.monotonic()
        proc = subprocess.Popen(_command(tmp_path / f"probe{attempt}" / "index.db",
                                         clips[:PER_RUN]), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        lines = [(time.monotonic() - t0, line) for line in proc.stdout]
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
        if time.monotonic() - t0 > typical:
            typical = time.monotonic() - t0
            reporting = (lines[0][0], lines[-1][0])
        assert sum("added " in line for _, line in lines) == PER_RUN

    db = None
    confirmed: dict[Path, set[str]] = {}  # per index: every source printed as added
    summary = {"runs": 0, "killed": 0, "mid_batch": 0, "added_before_kill": 0}
    for run in range(RUNS + EXTRA_RUNS):
        if run >= RUNS and summary["mid_batch"] >= 3:
            break
        # A new index now and then (kills during creation and migration); extra runs,
        # made only while too few kills landed between videos, each get their own.
        if run % 6 == 0 or run >= RUNS:
            db = tmp_path / f"index{run:02d}" / "index.db"
            confirmed[db] = set()
        first = (run % RUNS) * (PER_RUN - 1)
        batch = clips[first:first + PER_RUN]
        delay = rng.uniform(0, typical) if run % 2 and run < RUNS else rng.uniform(*reporting)
        proc = subprocess.Popen(_command(db, batch), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its ffmpeg, no warning
            summary["killed"] += 1
        out, err = proc.communicate(timeout=60)
        summary["runs"] += 1
        assert "Traceback" not in err
        added = set(re.findall(r"^added (.+) \(video #\d+, \d+ keyframes\)$", out, re.M))
        if 0 < len(out.splitlines()) < PER_RUN:
            summary["mid_batch"] += 1
        summary["added_before_kill"] += len(added)
        confirmed[db] |= added
        try:
            _check_index(db, confirmed[db])
        except AssertionError as exc:
            raise AssertionError(f"run {run} (seed {SEED}, killed after {delay:.2f} s, "
                                 f"output {out!r}): {exc}") from None
    # Every index still opens for the CLI.
    for db in confirmed:
        listed = subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), "stats"],
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
    elapsed = time.monotonic() - started
    say(request, f"crash safety: {summary['runs']} runs, {summary['killed']} killed "
                 f"({summary['mid_batch']} mid-batch), {summary['added_before_kill']} videos "
                 f"confirmed before a kill, 0 lost; add of {PER_RUN} clips takes "
                 f"{typical:.1f} s; {elapsed:.0f} s in all (seed {SEED})")
    assert summary["runs"] >= 20
    assert summary["killed"] >= RUNS // 3, summary  # the delays do interrupt many runs
    assert summary["mid_batch"] >= 3, summary  # and some land between videos


def test_an_interrupted_batch_completes_on_the_next_run(clips, tmp_path):
    """After a kill, running the same add again indexes the rest: nothing is stuck
    half-done (no row that blocks the video from being added again)."""
    db = tmp_path / "index.db"
    batch = clips[:PER_RUN]
    proc = subprocess.Popen(_command(db, batch), stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # kill once the first video is confirmed: mid-batch for sure
    first = proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert first.startswith("added ")
    again = subprocess.run(_command(db, batch), capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0].startswith("already indexed ")
    assert len(lines) == PER_RUN and all(line.startswith(("added ", "already indexed "))
                                         for line in lines)
    assert _check_index(db, {str(p) for p in batch})["videos"] == PER_RUN
