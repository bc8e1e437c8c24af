"""Concurrency (issue 6): four `provenance add` processes, each with its own videos, and
two `provenance check` processes share one index at the same moment. Every process
exits 0, none says "database is locked", and every video is there at the end.

Run three times: on an index that already exists, on one that does not (all six race
to create it and run the migrations), and on one a schema version behind (all six
race to upgrade it).
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hostile import half_indexed_videos, say

WRITERS = 4
CHECKERS = 2
CLIPS_PER_WRITER = 3


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, list[Path]]:
    folder = tmp_path_factory.mktemp("concurrency-clips")
    base = folder / "base.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=128x96:r=15:d=2", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", base)
    seed = folder / "seed.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=128x96:r=15:d=2", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", seed)
    writers = []
    for w in range(WRITERS):
        own = []
        for c in range(CLIPS_PER_WRITER):
            target = folder / f"w{w}-c{c}.mp4"
            # distinct files (distinct videos), same footage: checks find them all
            _ffmpeg("-i", base, "-c", "copy", "-metadata", f"comment=writer {w} clip {c}", target)
            own.append(target)
        writers.append(own)
    return {"writers": writers, "query": [base], "seed": [seed]}


def _start(args: list[str], db: Path, gate: threading.Event) -> dict:
    record: dict = {"args": args}

    def go() -> None:
        gate.wait()
        done = subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), *args],
                              capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        record.update(code=done.returncode, out=done.stdout, err=done.stderr)

    record["thread"] = threading.Thread(target=go)
    record["thread"].start()
    return record


def _previous_schema(db: Path) -> None:
    """An index as the previous release left it: every migration but the last."""
    from provenance.hashing import hasher_for, scheme_of
    from provenance.index import MIGRATIONS, SCHEMA_VERSION

    if SCHEMA_VERSION < 2:
        pytest.skip("one schema version so far: nothing to upgrade from")
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        for migration in MIGRATIONS[:-1]:
            for statement in migration.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('hash_scheme', ?)", (scheme_of(hasher_for("pdq")),))
        conn.execute("INSERT INTO meta VALUES ('created_at', '2024-01-01T00:00:00Z')")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.mark.parametrize("start", ["existing", "new", "previous-schema"])
def test_four_writers_and_two_checkers_at_once(clips, tmp_path, start, request):
    db = tmp_path / "data" / "index.db"
    fresh = start != "existing"
    if start == "previous-schema":
        _previous_schema(db)
    if not fresh:
        seeded = subprocess.run([sys.executable, "-m", "provenance", "--db", str(db), "add",
                                 str(clips["seed"][0])], capture_output=True, text=True,
                                timeout=120)
        assert seeded.returncode == 0, seeded.stderr
    gate = threading.Event()
    runs = [_start(["add", *map(str, own)], db, gate) for own in clips["writers"]]
    runs += [_start(["check", str(clips["query"][0]), "--format", "json"], db, gate)
             for _ in range(CHECKERS)]
    started = time.monotonic()
    gate.set()  # all six start together
    for run in runs:
        run["thread"].join(timeout=320)
    elapsed = time.monotonic() - started
    for run in runs:
        output = run.get("out", "") + run.get("err", "")
        if start == "new" and run["args"][0] == "check" and run.get("code") == 6:
            # It looked before any writer had made the index: none to check against.
            assert output == f"provenance: error: no index at {db}: `provenance add` creates one\n"
            continue
        assert run.get("code") == 0, (run["args"], output)
        assert "locked" not in output.lower() and "busy" not in output.lower(), output
        assert "Traceback" not in output
    for run, own in zip(runs, clips["writers"]):
        lines = run["out"].splitlines()
        assert [line.split(" (video")[0] for line in lines] == [f"added {p}" for p in own]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sources = {r[0] for r in conn.execute("SELECT source FROM sightings")}
        expected = {str(p) for own in clips["writers"] for p in own}
        assert expected <= sources, expected - sources
        videos = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
        assert videos == WRITERS * CLIPS_PER_WRITER + (0 if fresh else 1)
        assert half_indexed_videos(conn) == []
        from provenance.index import SCHEMA_VERSION

        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        schemes = conn.execute("SELECT count(*) FROM meta WHERE key = 'hash_scheme'").fetchone()
        assert schemes[0] == 1  # migrated once, not once per racing process
    finally:
        conn.close()
    say(request, f"concurrency ({start} index): {WRITERS} writers x "
                 f"{CLIPS_PER_WRITER} clips + {CHECKERS} checkers in {elapsed:.1f} s, "
                 f"{videos} videos at the end")


def test_two_writers_given_the_same_file_both_succeed(clips, tmp_path):
    # Each checks for the file before hashing it, which takes a while: both find
    # it new, and the slower one must record a sighting, not fail.
    db = tmp_path / "data" / "index.db"
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(clips["seed"][0].read_bytes())
    gate = threading.Event()
    runs = [_start(["add", str(path)], db, gate) for path in (clips["seed"][0], copy)]
    gate.set()
    for run in runs:
        run["thread"].join(timeout=320)
    for run in runs:
        assert run.get("code") == 0, run.get("out", "") + run.get("err", "")
    said = sorted(run["out"].split()[0] for run in runs)
    assert said == ["added", "new"], [run["out"] for run in runs]  # "new sighting"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
        assert {r[0] for r in conn.execute("SELECT source FROM sightings")} == \
            {str(clips["seed"][0]), str(copy)}
    finally:
        conn.close()


def _open_new_index(path: str, barrier, errors) -> None:
    from provenance.index import Index

    barrier.wait()
    try:
        with Index(Path(path)) as index:
            index.generation()
    except Exception as exc:  # reported to the test, not lost in a child
        errors.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_opening_a_new_index_at_once_both_get_it(tmp_path):
    # Switching a new database to WAL takes a lock SQLite does not wait for:
    # 47 of 300 such pairs failed with "database is locked" before it was retried.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for attempt in range(60):
        barrier = context.Barrier(2)
        path = str(tmp_path / f"new{attempt}" / "index.db")
        workers = [context.Process(target=_open_new_index, args=(path, barrier, errors))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
