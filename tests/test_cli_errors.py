"""Bad input: a clear one-line message, a documented exit code, the index untouched."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLES
from hostile import half_indexed_videos


@pytest.fixture
def seeded(cli):
    assert cli("add", str(SAMPLES / "basketball.mp4")).returncode == 0
    return cli


def _snapshot(cli) -> tuple[str, str]:
    return cli("list").stdout, cli("stats").stdout.split("size_bytes")[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad_sources(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video at all\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "text file": (str(text), 5, "not a video container (tty)"),
        "zero-byte file": (str(empty), 3, "empty file (0 bytes)"),
        "missing path": (str(tmp_path / "nowhere.mp4"), 3, "no such file"),
        "unreachable URL": (f"http://127.0.0.1:{_closed_port()}/clip.mp4", 4, "refused"),
        "unsupported scheme": ("ftp://127.0.0.1/clip.mp4", 3, "unsupported URL scheme"),
        "file URL": (f"file://{SAMPLES / 'basketball.mp4'}", 3, "pass the local path instead"),
    }


@pytest.mark.parametrize("kind", ["text file", "zero-byte file", "missing path", "unreachable URL",
                                  "unsupported scheme", "file URL"])
@pytest.mark.parametrize("command", ["add", "check"])
def test_bad_source_fails_cleanly_and_changes_nothing(seeded, tmp_path, kind, command):
    source, code, message = _bad_sources(tmp_path)[kind]
    before = _snapshot(seeded)
    done = seeded(command, source)
    assert done.returncode == code, (done.stdout, done.stderr)
    output = done.stdout + done.stderr
    assert message in output
    assert "Traceback" not in output
    if command == "check":
        assert done.stderr.startswith("provenance: error: ") and done.stderr.count("\n") == 1
    else:
        assert done.stdout.startswith(f"failed {source}")
    assert _snapshot(seeded) == before


def test_add_goes_on_after_a_bad_source(seeded, tmp_path):
    done = seeded("add", str(tmp_path / "missing.mp4"), str(SAMPLES / "his-girl-friday.mp4"))
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("failed ") and lines[1].startswith("added ")
    assert done.returncode == 3  # the failure is still reported to scripts


def test_help_documents_exit_codes(cli):
    done = cli("--help")
    assert done.returncode == 0
    assert "Exit codes:" in done.stdout and "fetch failure" in done.stdout


def test_unusable_index_path_is_an_index_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = cli("--db", str(blocker / "index.db"), "add", str(SAMPLES / "basketball.mp4"))
    assert done.returncode == 6
    assert done.stderr.startswith("provenance: error: index ")


@pytest.mark.parametrize("command", [["check", str(SAMPLES / "basketball.mp4")], ["list"],
                                     ["stats"], ["show", "1"], ["remove", "1"]])
def test_a_mistyped_index_path_is_an_error_not_an_empty_index(cli, tmp_path, command):
    # "No indexed video shares footage" from an index that does not exist would
    # be a false all-clear.
    missing = tmp_path / "tpyo" / "index.db"
    done = cli("--db", str(missing), *command)
    assert done.returncode == 6, done.stdout + done.stderr
    assert done.stderr == f"provenance: error: no index at {missing}: `provenance add` creates one\n"
    assert not missing.parent.exists()


def test_an_unknown_video_id_is_bad_input(seeded):
    for command in ("show", "remove"):
        done = seeded(command, "999")
        assert done.returncode == 3 and "no video #999" in done.stderr, done.stderr


def test_check_add_with_a_report_it_cannot_write_leaves_the_index_as_it_was(seeded, tmp_path):
    before = _snapshot(seeded)
    query = str(SAMPLES / "fast-conveyor.mp4")
    done = seeded("check", query, "--add", "--format", "html")
    assert done.returncode == 2 and "--output" in done.stderr
    done = seeded("check", query, "--add", "-o", str(tmp_path / "nowhere" / "r.json"))
    assert done.returncode == 3 and "no folder" in done.stderr, done.stderr
    # A folder no file can be made in, whoever runs the tests (root included).
    done = seeded("check", query, "--add", "--format", "json", "-o", "/proc/provenance-report.json")
    assert done.returncode == 3 and "cannot write the report" in done.stderr, done.stderr
    assert _snapshot(seeded) == before
    done = seeded("check", query, "--add", "-o", str(tmp_path / "r.txt"))
    assert done.returncode == 0 and (tmp_path / "r.txt").read_text()
    assert _snapshot(seeded) != before


def test_sigterm_stops_a_batch_add_as_ctrl_c_does(env, tmp_path):
    # A cron `timeout` sends SIGTERM: the run must stop cleanly (its workers
    # stopped, nothing half-written), not die where it stands.
    db = Path(env["PROVENANCE_DB"])
    run = _batch_add(_long_clips(tmp_path, 40), tmp_path.name,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # As a timeout strikes: with the workers at work, not in their first milliseconds.
    deadline = time.monotonic() + 60
    while len(_marked(f"PROVENANCE_TEST_RUN={tmp_path.name}", run.pid)) < 2 \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, (run.returncode, out, err)
    assert err.endswith("provenance: interrupted\n") and "Traceback" not in err, err
    with sqlite3.connect(db) as conn:
        assert half_indexed_videos(conn) == []


def test_a_killed_batch_add_leaves_no_worker_behind(env, tmp_path):
    # SIGKILL (the out-of-memory killer) cannot be caught: the workers must see
    # their parent die and stop, not decode on for minutes with no one to tell.
    marker = f"PROVENANCE_TEST_RUN={tmp_path.name}"
    run = _batch_add(_long_clips(tmp_path, 60), tmp_path.name,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ours() -> list[int]:
        return _marked(marker, run.pid)

    deadline = time.monotonic() + 60
    while not ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours(), "the batch started no worker"
    time.sleep(1.0)
    run.kill()
    run.wait(timeout=30)
    deadline = time.monotonic() + 20
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ours() == []


def _long_clips(folder: Path, seconds: int) -> list[Path]:
    """Two distinct 640x360 clips, long enough that a batch add of them takes a while."""
    clips = []
    for n in range(2):
        clips.append(folder / f"long{n}.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=s=640x360:r=30:d={seconds},hue=h={n * 90}", "-c:v", "libx264",
                        "-preset", "ultrafast", str(clips[-1])], check=True, timeout=120)
    return clips


def _batch_add(clips: list[Path], run_name: str, **popen) -> subprocess.Popen:
    """`provenance add` of ``clips``, its processes marked PROVENANCE_TEST_RUN=run_name."""
    return subprocess.Popen([sys.executable, "-m", "provenance", "add", *map(str, clips)],
                            env={**os.environ, "PROVENANCE_TEST_RUN": run_name}, **popen)


def _marked(marker: str, parent: int) -> list[int]:
    """Live processes but ``parent`` whose environment carries ``marker``: a
    run's workers and their ffmpeg."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in environ and state != "Z" and int(entry.name) != parent:
            found.append(int(entry.name))
    return found
