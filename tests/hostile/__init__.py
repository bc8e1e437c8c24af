"""Hostile input, faults and concurrency (issue 6): the corpus of bad input lives in
``corpus.py`` and runs in ``test_hostile.py``; ``say`` is shared with
tests/test_crash_safety.py, tests/test_concurrency.py and tests/test_fuzz.py."""
from __future__ import annotations


def say(request, text: str) -> None:
    """A summary line on the terminal even without -s (pytest captures test output)."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover
        print(text)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(text)


def half_indexed_videos(conn) -> list[tuple]:
    """Video rows whose frames or sightings are not all there: (id, keyframe_count,
    keyframe rows, all frame rows, sightings). A video has keyframe_count rows of its
    stored view (view 0 once the index keeps several views of a keyframe), every other
    view complete or absent, and at least one sighting."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(frames)")}
    main_view = " AND f.view = 0" if "view" in columns else ""
    rows = conn.execute(
        "SELECT v.id, v.keyframe_count,"
        f" (SELECT count(*) FROM frames f WHERE f.video_id = v.id{main_view}),"
        " (SELECT count(*) FROM frames f WHERE f.video_id = v.id),"
        " (SELECT count(*) FROM sightings s WHERE s.video_id = v.id) FROM videos v").fetchall()
    return [(vid, count, kept, total, seen) for vid, count, kept, total, seen in rows
            if count < 1 or kept != count or total % count or seen < 1]
