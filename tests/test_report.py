"""The JSON report: real reports from the real CLI, checked against the published schema.

Scenarios follow samples/README.md's ground truth: the repost is big-buck-bunny
seconds [2, 6); unrelated.mp4 matches nothing; variants are cut with real ffmpeg.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from conftest import INDEXED_SAMPLES, SAMPLES, ffmpeg_cut, run_cli, video_page
from provenance import fetch, match, report
from provenance.errors import BadInputError

HOSTILE_TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE_AUTHOR = '"><b>x</b>'


# --- fixtures and helpers shared with test_report_html.py ---------------------------

@pytest.fixture(scope="session")
def samples_index(tmp_path_factory) -> Path:
    """The four indexed samples, indexed once by the real CLI (indexing is the slow part)."""
    root = tmp_path_factory.mktemp("samples-index")
    env = {"PROVENANCE_DB": str(root / "index.db"), "XDG_CACHE_HOME": str(root / "cache"),
           "XDG_CONFIG_HOME": str(root / "config"), "XDG_DATA_HOME": str(root / "data")}
    done = run_cli("add", *(str(SAMPLES / name) for name in INDEXED_SAMPLES), env=env)
    assert done.returncode == 0, done.stderr
    return root / "index.db"


def copy_index(template: Path, db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    # The search structure (.search/) is left behind: the copy rebuilds its own.
    for suffix in ("", "-wal", "-shm"):
        part = template.with_name(template.name + suffix)
        if part.is_file():
            shutil.copy(part, db.with_name(db.name + suffix))


@pytest.fixture
def indexed(env, samples_index) -> None:
    """This test's index starts as a copy of the indexed samples."""
    copy_index(samples_index, Path(env["PROVENANCE_DB"]))


def add(cli, *sources: Path | str) -> None:
    done = cli("add", *map(str, sources))
    assert done.returncode == 0, done.stdout + done.stderr


def check_json(cli, source: Path | str, out: Path) -> dict:
    """`provenance check SOURCE --format json --output OUT`, validated against the schema."""
    done = cli("check", str(source), "--format", "json", "--output", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(report.load_schema()).validate(data)
    report.validate(data)
    return data


def add_hostile_page(cli, server, clip: Path) -> str:
    """A platform-like post with script in its title and markup in its author, serving a
    copy of ``clip``; returns the page URL after indexing it."""
    shutil.copy(clip, server.root / "clip.mp4")
    (server.root / "post.html").write_text(
        video_page(title=HOSTILE_TITLE, author=HOSTILE_AUTHOR,
                   upload_date="2024-03-01T10:00:00Z", content_url=server.url("clip.mp4")),
        encoding="utf-8")
    url = server.url("post.html")
    add(cli, url)
    return url


def edit_sightings(data: dict, **changes) -> None:
    """Change every copy of the sightings in a report dict (matches, timeline, earliest)."""
    for m in data["matches"]:
        for s in m["video"]["sightings"]:
            s.update(changes)
    for t in data["timeline"]:
        t["sighting"].update(changes)
    if data["earliest_sighting"]:
        data["earliest_sighting"]["sighting"].update(changes)


def kinds(m: dict) -> list[str]:
    return [r["kind"] for r in m["relations"]]


# --- the schema itself --------------------------------------------------------------

def test_schema_is_valid_draft_2020_12_and_uses_the_code_enums():
    schema = report.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"] == {"enum": ["1.0", "1.1", "1.2",
                                                           report.SCHEMA_VERSION]}
    d = schema["$defs"]
    assert tuple(d["upload_time"]["properties"]["precision"]["enum"]) == fetch.PRECISIONS
    assert tuple(d["upload_time"]["properties"]["source"]["enum"]) == fetch.TIME_SOURCES
    assert tuple(d["relation_kind"]["enum"]) == match.RELATION_KINDS
    assert d["match"]["properties"]["method"]["enum"] == [match.METHOD_HASHES,
                                                          match.METHOD_KEYPOINTS]
    assert d["earliest_sighting"]["properties"]["basis"]["enum"] == ["upload_time", "retrieved_at"]
    pattern = d["timeline_entry"]["properties"]["relation"]["pattern"]
    assert all(k in pattern for k in match.RELATION_KINDS)


def _closed_objects(schema: dict) -> dict[str, dict]:
    d, top, m = schema["$defs"], schema["properties"], schema["$defs"]["match"]["properties"]
    return {
        "Report": schema, "Decision": top["decision"], "QueryReport": d["query"],
        "SourceMetadata": d["source_metadata"], "UploadTime": d["upload_time"],
        "MatchReport": d["match"], "VideoReport": d["video"], "SightingReport": d["sighting"],
        "Alignment": m["alignment"], "FramePairReport": m["frame_pairs"]["items"],
        "Relation": d["relation"], "EarliestSighting": d["earliest_sighting"],
        "TimelineEntry": d["timeline_entry"], "Evidence": d["evidence"],
        "KeyframeHash": d["evidence"]["properties"]["keyframes"]["items"],
    }


def test_schema_objects_list_exactly_the_dataclass_fields():
    # A field added to a dataclass without a schema change must fail here, not in a newsroom.
    classes = {c.__name__: c for c in (
        report.Report, report.Decision, report.QueryReport, fetch.SourceMetadata,
        fetch.UploadTime, report.MatchReport, report.VideoReport, report.SightingReport,
        report.Alignment, report.FramePairReport, match.Relation, report.EarliestSighting,
        report.TimelineEntry, report.Evidence, report.KeyframeHash)}
    for name, obj in _closed_objects(report.load_schema()).items():
        fields = {f.name for f in dataclasses.fields(classes[name])}
        assert set(obj["properties"]) == fields, name
        assert obj["additionalProperties"] is False, name
        assert set(obj.get("required", [])) <= fields, name


# --- reports from the CLI -----------------------------------------------------------

def test_zero_matches(cli, indexed, tmp_path):
    data = check_json(cli, SAMPLES / "unrelated.mp4", tmp_path / "r.json")
    assert data["matches"] == [] and data["timeline"] == []
    assert data["earliest_sighting"] is None
    assert data["index"] == {"videos": 4, "keyframes": data["index"]["keyframes"]}
    text = cli("report", str(tmp_path / "r.json")).stdout
    assert "No indexed video shares footage with this clip." in text


def test_one_match_repost(cli, indexed, tmp_path):
    out = tmp_path / "r.json"
    data = check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", out)
    (m,) = data["matches"]
    assert m["video"]["source"].endswith("big-buck-bunny.mp4")
    assert kinds(m)[:2] == ["reencoded", "subclip"] and "mirrored" not in kinds(m)
    ra, rb = m["reference_segment"]  # ground truth: reference seconds [2, 6)
    assert abs(ra - 2.0) <= 0.75 and abs(rb - 6.0) <= 0.75
    assert m["query_coverage"] == pytest.approx(1.0, abs=0.1)
    assert m["frame_pairs"] and all(p["reference_t"] >= p["query_t"] for p in m["frame_pairs"])
    (entry,) = data["timeline"]
    assert entry["relation"] == ", ".join(kinds(m))
    assert data["earliest_sighting"]["basis"] == "retrieved_at"  # local files: no upload time
    assert data["earliest_sighting"]["sighting"] == entry["sighting"]
    assert data["evidence"]["sha256"] == data["query"]["sha256"]
    assert len(data["evidence"]["keyframes"]) == data["query"]["keyframe_count"]


def test_report_json_round_trips_byte_identically(cli, indexed, tmp_path):
    out = tmp_path / "r.json"
    check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", out)
    original = out.read_bytes()
    shown = cli("report", str(out), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.encode("utf-8") == original
    again = tmp_path / "again.json"
    assert cli("report", str(out), "--format", "json", "--output", str(again)).returncode == 0
    assert again.read_bytes() == original
    assert report.to_json(report.load_report(out)).encode("utf-8") == original


def test_several_matches(cli, indexed, tmp_path):
    bbb = SAMPLES / "big-buck-bunny.mp4"
    early = ffmpeg_cut(bbb, tmp_path / "bbb-early.mp4", start=0.0, duration=6.5)
    late = ffmpeg_cut(bbb, tmp_path / "bbb-late.mp4", start=1.5, duration=8.5)
    add(cli, early, late)
    data = check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", tmp_path / "r.json")
    sources = {Path(m["video"]["source"]).name for m in data["matches"]}
    assert {"big-buck-bunny.mp4", "bbb-early.mp4", "bbb-late.mp4"} <= sources
    assert sources <= {"big-buck-bunny.mp4", "bbb-early.mp4", "bbb-late.mp4"}
    scores = [m["score"] for m in data["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert len(data["timeline"]) == sum(len(m["video"]["sightings"]) for m in data["matches"])
    retrieved = [t["sighting"]["retrieved_at"] for t in data["timeline"]]
    assert retrieved == sorted(retrieved)  # no upload times: retrieval order
    assert data["earliest_sighting"]["sighting"] == data["timeline"][0]["sighting"]
    late_match = next(m for m in data["matches"] if m["video"]["source"].endswith("late.mp4"))
    ra, rb = late_match["reference_segment"]  # repost [2, 6) of bbb is [0.5, 4.5) of the cut
    assert abs(ra - 0.5) <= 0.75 and abs(rb - 4.5) <= 0.75


def test_mirrored_copy(cli, indexed, tmp_path):
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "flipped.mp4", vf="hflip")
    data = check_json(cli, query, tmp_path / "r.json")
    best = data["matches"][0]
    assert best["video"]["source"].endswith("big-buck-bunny.mp4")
    assert "mirrored" in kinds(best) and best["alignment"]["mirrored"] is True
    assert "mirrored" in data["timeline"][0]["relation"]


def test_trimmed_copy(cli, indexed, tmp_path):
    query = ffmpeg_cut(SAMPLES / "tears-of-steel.mp4", tmp_path / "trim.mp4", start=3.0,
                       duration=4.0)
    data = check_json(cli, query, tmp_path / "r.json")
    best = data["matches"][0]
    assert best["video"]["source"].endswith("tears-of-steel.mp4")
    assert "subclip" in kinds(best) and "mirrored" not in kinds(best)
    ra, rb = best["reference_segment"]
    assert abs(ra - 3.0) <= 0.75 and abs(rb - 7.0) <= 0.75
    assert best["reference_coverage"] == pytest.approx(0.4, abs=0.1)


def test_hostile_metadata_is_kept_verbatim_in_json(cli, tmp_path, http_server):
    url = add_hostile_page(cli, http_server, SAMPLES / "big-buck-bunny.mp4")
    data = check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", tmp_path / "r.json")
    (m,) = data["matches"]
    (sighting,) = m["video"]["sightings"]
    assert sighting["title"] == HOSTILE_TITLE and sighting["uploader"] == HOSTILE_AUTHOR
    assert sighting["url"] == url
    assert sighting["upload_time"] == {"value": "2024-03-01T10:00:00Z", "precision": "second",
                                       "source": "platform"}
    assert data["earliest_sighting"]["basis"] == "upload_time"


def test_text_view_strips_control_characters(cli, indexed, tmp_path):
    data = check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", tmp_path / "r.json")
    edit_sightings(data, title="evil\x1b[2J\u202etitle", uploader="bell\x07\nnewline",
                   url="https://example.invalid/\x1b]8;;x\x07")
    report.validate(data)
    text = report.render_text(report.from_dict(data))
    assert not any(c in text for c in "\x1b\x07\u202e")
    assert "bellnewline" not in text and "bell newline" in text


# --- rejecting what is not a report -------------------------------------------------

@pytest.fixture
def valid_report(cli, indexed, tmp_path) -> dict:
    return check_json(cli, SAMPLES / "repost-big-buck-bunny.mp4", tmp_path / "r.json")


def _broken_variants(data: dict) -> dict[str, object]:
    missing = json.loads(json.dumps(data))
    del missing["evidence"]["sha256"]
    bad_kind = json.loads(json.dumps(data))
    bad_kind["matches"][0]["relations"][0]["kind"] = "photoshopped"
    extra = json.loads(json.dumps(data))
    extra["matches"][0]["verdict"] = "fake"
    wrong_type = json.loads(json.dumps(data))
    wrong_type["matches"][0]["score"] = "high"
    bad_precision = json.loads(json.dumps(data))
    bad_precision["query"]["metadata"]["upload_time"] = {"value": "2024-01-01",
                                                         "precision": "minute", "source": "feed"}
    huge = json.loads(json.dumps(data))
    huge["query"]["duration_s"] = 10**400  # valid JSON, no float can hold it
    future = dict(data, schema_version="2.0")
    return {"missing": missing, "bad_kind": bad_kind, "extra": extra, "wrong_type": wrong_type,
            "bad_precision": bad_precision, "huge": huge, "future": future, "foreign": {"name": "not a report"},
            "list": [1, 2, 3], "number_version": {"schema_version": 1.0}}


def test_validate_names_the_offending_field(valid_report):
    data = valid_report
    report.validate(data)
    broken = _broken_variants(data)
    with pytest.raises(BadInputError, match=r"matches\[0\]\.relations\[0\]\.kind"):
        report.validate(broken["bad_kind"])
    with pytest.raises(BadInputError, match=r"evidence.*sha256"):
        report.validate(broken["missing"])
    with pytest.raises(BadInputError, match=r"verdict"):
        report.from_dict(broken["extra"])


def test_report_command_rejects_malformed_and_foreign_json(cli, valid_report, tmp_path):
    files = {name: json.dumps(v).encode() for name, v in _broken_variants(valid_report).items()}
    files |= {"not_json": b"{oops", "empty": b"", "binary": b"\xff\xfe\x00\x01garbage",
              "nan": json.dumps(dict(valid_report, score=float("nan"))).encode(),
              "deep": b"[" * 100_000 + b"]" * 100_000}
    formats = ["text", "json", "html"]
    for i, (name, content) in enumerate(files.items()):
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        out = tmp_path / f"{name}.out"
        done = cli("report", str(path), "--format", formats[i % 3], "--output", str(out))
        assert done.returncode == 3, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("provenance: error:"), (name, lines)
        assert "Traceback" not in done.stderr and not out.exists()
