"""The whole pipeline through the real CLI: index real clips, check reposts."""
from __future__ import annotations

import json
import sqlite3
import shutil
import subprocess

import pytest

from conftest import INDEXED_SAMPLES, SAMPLES, ffmpeg_cut, run_cli
from provenance.config import Settings
from provenance.index import CENTRE_VIEWS, REFRAMED_VIEWS
from provenance.keyframes import extract, probe


# 60 % of the width and height, taken off the centre (left, low): no view the
# index stores holds it whole.
OFF_CENTRE_CROP_60 = "crop=trunc(iw*0.6/2)*2:trunc(ih*0.6/2)*2:iw*0.05:ih*0.35"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """An index of the four sample clips, built once through `provenance add`."""
    root = tmp_path_factory.mktemp("e2e")
    env = _env(root)
    done = run_cli("add", *(str(SAMPLES / name) for name in INDEXED_SAMPLES), env=env)
    assert done.returncode == 0, done.stderr
    return root, env


def _env(root) -> dict[str, str]:
    """An index, cache and configuration of the test's own under ``root``."""
    return {"PROVENANCE_DB": str(root / "index.db"), "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_CONFIG_HOME": str(root / "config")}


def _indexed_before(root, views: tuple[int, ...], *files) -> dict[str, str]:
    """``files`` added, then made to look as an index built before the stored
    ``views`` (index.VIEW_*) and the keypoints were kept: those rows deleted, and
    the search structure derived from them with it (rebuilt from SQLite on use)."""
    env = _env(root)
    assert run_cli("add", *map(str, files), env=env).returncode == 0
    with sqlite3.connect(root / "index.db") as conn:
        conn.execute(f"DELETE FROM frames WHERE view IN ({','.join(map(str, views))})")
        conn.execute("DELETE FROM features")
        conn.execute("UPDATE videos SET features_version = 0")
    conn.close()
    shutil.rmtree(root / "index.db.search")
    return env


def check_json(env, source) -> dict:
    done = run_cli("check", str(source), "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def sole_match(report: dict, sample: str) -> tuple[dict, dict]:
    """The report's only match, which must be the sample, and its relations by kind."""
    assert [m["video"]["source"] for m in report["matches"]] == [str(SAMPLES / sample)]
    match = report["matches"][0]
    return match, {r["kind"]: r["value"] for r in match["relations"]}


def sole_match_at(report: dict, path) -> tuple[dict, dict]:
    """The report's only match, which must be the video indexed from ``path``."""
    assert [m["video"]["source"] for m in report["matches"]] == [str(path)]
    match = report["matches"][0]
    return match, {r["kind"]: r["value"] for r in match["relations"]}


def _bold_font() -> str:
    font = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans:bold"], capture_output=True,
                          text=True).stdout.strip()
    assert font.endswith(".ttf"), "no bold font for drawtext: make system-deps installs DejaVu"
    return font


def _on_blurred_copy(width: int, height: int, sigma: float = 24, before: str = "",
                     after: str = "") -> list[str]:
    """ffmpeg arguments putting the footage (after the filters ``before``) centred on
    a ``width`` x ``height`` frame filled with an enlarged copy of itself blurred by
    ``sigma``, then the filters ``after``: the 9:16 repost, or on a landscape frame
    the broadcast of 4:3 footage."""
    fit = f"{width}:-2" if height > width else f"-2:{height}"
    return ["-filter_complex",
            f"[0:v]{before + ',' if before else ''}split[a][b];"
            f"[a]scale={width}:{height}:force_original_aspect_ratio=increase,"
            f"crop={width}:{height},gblur=sigma={sigma}[bg];[b]scale={fit}[fg];"
            f"[bg][fg]overlay=(W-w)/2:(H-h)/2{',' + after if after else ''}"]


def test_add_prints_one_line_per_source(indexed):
    root, env = indexed
    done = run_cli("add", str(SAMPLES / "basketball.mp4"), env=env)
    assert done.returncode == 0
    assert done.stdout.startswith("already indexed ")
    assert len(done.stdout.strip().splitlines()) == 1


def test_trimmed_reencoded_repost_lists_exactly_its_source(indexed):
    _, env = indexed
    report = check_json(env, SAMPLES / "repost-big-buck-bunny.mp4")
    assert [m["video"]["source"] for m in report["matches"]] == [str(SAMPLES / "big-buck-bunny.mp4")]
    match = report["matches"][0]
    # Ground truth (samples/README.md): the repost is big-buck-bunny.mp4 [2.0, 6.0).
    start, end = match["reference_segment"]
    assert abs(start - 2.0) <= 1.0 and abs(end - 6.0) <= 1.0
    qa, qb = match["query_segment"]
    assert qa <= 0.6 and qb >= 3.4
    assert 0 < match["score"] <= 1
    assert match["query_coverage"] > 0.8
    assert 0.25 < match["reference_coverage"] < 0.6
    assert match["matched_frames"] >= 4
    assert report["earliest_sighting"]["sighting"]["source"] == str(SAMPLES / "big-buck-bunny.mp4")


def test_meme_captioned_copy_is_found_and_reported_as_overlaid(indexed, tmp_path):
    _, env = indexed
    font = _bold_font()
    text = (f"drawtext=fontfile={font}:x=(w-tw)/2:fontsize=h/12:fontcolor=white:borderw=3:"
            "bordercolor=black")
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "meme.mp4",
                       vf=f"{text}:text='WHEN THE BUNNY':y=h*0.04,{text}:text='SEES IT COMING':y=h*0.86")
    report = check_json(env, query)
    match, relations = sole_match(report, "big-buck-bunny.mp4")
    # Met either with the text filled in (covering a few percent of the picture)
    # or on the footage's centre, which the text leaves alone.
    assert 0.02 < relations.get("overlaid", 0.05) < 0.2, relations
    assert "overlaid" in relations or "edges_differ" in relations, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 9.0


def test_blurred_dim_copy_is_searched_not_refused_as_flat(indexed, tmp_path):
    """Every frame of a blurred, darkened screen recording is under the detail a
    frame of ordinary footage needs; judged against its own frames, it is still
    searched with, and found."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "dim.mp4",
                       vf="gblur=sigma=6,eq=contrast=0.25:brightness=-0.2")
    match, _ = sole_match(check_json(env, query), "big-buck-bunny.mp4")
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 9.0


def test_copy_under_a_caption_bar_is_found_on_its_centre(indexed, tmp_path):
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "caption.mp4",
                       vf="drawbox=x=0:y=ih*0.8:w=iw:h=ih*0.2:color=0x202020@0.9:t=fill")
    report = check_json(env, query)
    _, relations = sole_match(report, "basketball.mp4")
    assert relations.keys() & {"edges_differ", "overlaid"}, relations


@pytest.mark.parametrize("kept", [0.8, 0.897, 0.74])
def test_zoomed_in_copy_is_found_and_reported_as_cropped(indexed, tmp_path, kept):
    """A centre crop, scaled back up by the player: near a rung of the zoom
    ladder (0.8 is 0.5 % from 0.804), between two of its fine rungs (0.897: 1 % from
    0.906 and 0.888) and of its coarse ones (0.74: 1.5 % from 0.729)."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "zoomed.mp4",
                       vf=f"crop=trunc(iw*{kept}/2)*2:trunc(ih*{kept}/2)*2,scale=640:-2")
    report = check_json(env, query)
    match, relations = sole_match(report, "big-buck-bunny.mp4")
    assert abs(relations["cropped"] - kept) <= 0.03, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 9.0


@pytest.mark.parametrize("mirrored", [False, True])
def test_copy_cut_to_60_percent_off_its_centre_is_found_by_keypoints(indexed, tmp_path,
                                                                      mirrored):
    """No view the index stores holds a 60 % crop taken off the centre whole, so no
    frame hash meets it; the keypoints do, mirrored or not, and measure the crop."""
    _, env = indexed
    flip = ",hflip" if mirrored else ""
    query = ffmpeg_cut(SAMPLES / "tears-of-steel.mp4", tmp_path / "crop60.mp4",
                       vf=OFF_CENTRE_CROP_60 + flip)
    match, relations = sole_match(check_json(env, query), "tears-of-steel.mp4")
    assert match["method"] == "keypoints" and match["mean_distance"] is None
    assert match["alignment"]["mirrored"] == mirrored
    assert match["alignment"]["speed"] == 1.0
    assert abs(relations["cropped"] - 0.6) <= 0.05, relations
    assert all(p["inliers"] >= 15 and p["distance"] is None for p in match["frame_pairs"])
    start, end = match["reference_segment"]
    assert start <= 1.0 and end >= 9.0


def test_footage_indexed_again_and_again_is_met_by_keypoints_in_every_copy(tmp_path):
    """A desk indexes an original and its reposts, so each of the footage's
    keypoints has twins in other videos. A twin is the same footage, not a rival
    that makes the keypoint ambiguous: a 60 % crop off the centre is found in
    every copy."""
    env = _env(tmp_path)
    original = SAMPLES / "tears-of-steel.mp4"
    reposts = [ffmpeg_cut(original, tmp_path / f"repost-{width}.mp4", vf=f"scale={width}:-2")
               for width in (640, 600, 560)]
    assert run_cli("add", str(original), *map(str, reposts), env=env).returncode == 0
    query = ffmpeg_cut(original, tmp_path / "crop60.mp4",
                       vf=OFF_CENTRE_CROP_60)
    found = {m["video"]["source"]: m["method"] for m in check_json(env, query)["matches"]}
    assert found == {str(video): "keypoints" for video in (original, *reposts)}


def test_news_repost_too_small_for_either_measure_alone_is_found_by_both(tmp_path):
    """A signer trimmed to 1.4 s, cropped and shown at half size under a news
    ticker (bench/accuracy's news combo): its frame hashes meet the original too
    weakly to list it, and its keypoints meet 3 frames, one short of a match. The
    two put it at the same place in the same video, so it is listed, aligned, and
    the report says the hashes agreed."""
    env = _env(tmp_path)
    assert run_cli("add", str(SAMPLES / "asl-night.mkv"), env=env).returncode == 0
    match, _ = sole_match(check_json(env, SAMPLES / "asl-night-news-repost.mp4"), "asl-night.mkv")
    assert match["method"] == "keypoints" and match["score"] >= 0.4
    [reencoded] = [r for r in match["relations"] if r["kind"] == "reencoded"]
    assert "frame hashes met too weakly to list it" in reencoded["evidence"]
    assert match["alignment"]["speed"] == 1.0
    # The truth: the repost shows seconds 0.46-1.84 of the original.
    start, end = match["reference_segment"]
    assert abs(start - 0.46) <= 0.25 and end >= 1.6, match["reference_segment"]


def test_another_sign_by_the_same_signer_in_the_same_office_is_not_listed(tmp_path):
    """Two 2 s clips of one signer at one desk, signing other words, both from and
    back to the same rest pose: the frames of one meet the other's opening moments
    10-24 bits off (a PDQ match is within 31). Another sign is not the same footage;
    a copy of either still finds its own."""
    env = _env(tmp_path)
    assert run_cli("add", str(SAMPLES / "asl-learn.mkv"), env=env).returncode == 0
    assert check_json(env, SAMPLES / "asl-school.mkv")["matches"] == []
    assert run_cli("add", str(SAMPLES / "asl-school.mkv"), env=env).returncode == 0
    copy = ffmpeg_cut(SAMPLES / "asl-school.mkv", tmp_path / "school-copy.mp4",
                      vf="scale=480:-2")
    match, _ = sole_match(check_json(env, copy), "asl-school.mkv")
    assert match["alignment"]["speed"] == 1.0


def test_copy_covered_in_stickers_is_found(indexed, tmp_path):
    """Six stickers (boxes and glyphs, a sixth of the picture's height each) over
    the footage: found whichever way, by the frame hashes or the keypoints."""
    _, env = indexed
    font = _bold_font()
    boxes = ",".join(f"drawbox=x=iw*{x}:y=ih*{y}:w=ih*0.16:h=ih*0.16:color={c}@0.95:t=fill"
                     for x, y, c in ((0.06, 0.10, "yellow"), (0.70, 0.62, "magenta"),
                                     (0.40, 0.75, "cyan")))
    glyphs = ",".join(f"drawtext=fontfile={font}:text='{g}':x=w*{x}:y=h*{y}:fontsize=h*0.2:"
                      f"fontcolor={c}:borderw=2:bordercolor=black"
                      for g, x, y, c in (("\u2605", 0.78, 0.08, "yellow"),
                                         ("\u2665", 0.10, 0.62, "red"),
                                         ("\u263a", 0.45, 0.30, "white")))
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "stickers.mp4",
                       vf=f"{boxes},{glyphs}")
    match, _ = sole_match(check_json(env, query), "basketball.mp4")
    start, end = match["reference_segment"]
    assert start <= 1.0 and end >= match["video"]["duration_s"] - 1.5
    # Listing everything (threshold 0, as the benchmark does) must not hide it
    # behind the frame hashes' weak match of the same video.
    everything, _ = sole_match(check_json({**env, "PROVENANCE_MATCH_THRESHOLD": "0"}, query),
                               "basketball.mp4")
    assert (everything["score"], everything["method"]) == (match["score"], match["method"])


def test_zoomed_in_copy_with_a_plain_wall_along_one_edge_is_found(indexed, tmp_path):
    """Zoomed in to 80 %, the left 14 % a plain wall (painted flat here): the wall
    passes for padding on that side only, which takes the footage's box, and its
    centre, off the picture's. The picture's own centre at the zoom finds it."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "wall.mp4",
                       vf="crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2,scale=640:-2,"
                          "drawbox=x=0:y=0:w=iw*0.14:h=ih:color=0xD8D8D0:t=fill")
    _, relations = sole_match(check_json(env, query), "big-buck-bunny.mp4")
    assert abs(relations["cropped"] - 0.8) <= 0.03, relations


def test_copy_turned_inside_its_frame_is_found_and_reported_as_rotated(indexed, tmp_path):
    _, env = indexed
    # ffmpeg turns clockwise for a positive angle, keeps the frame size and fills
    # the cut-off corners black: a tilted repost.
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "tilted.mp4",
                       vf="rotate=6*PI/180:fillcolor=black")
    report = check_json(env, query)
    match, relations = sole_match(report, "big-buck-bunny.mp4")
    assert abs(relations["rotated"] - 6.0) <= 0.5, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 9.0


def test_pillarboxed_copy_turned_with_its_bars_is_found_and_reported_as_rotated(indexed,
                                                                                tmp_path):
    """Footage between black bars, turned with them: its cut-off corners run into
    the bars, so no four wedges give the turn; the footage set upright as a
    centred box does."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "tilted-bars.mp4",
                       vf="pad=trunc(iw*1.5/2)*2:ih:(ow-iw)/2:0:color=black,"
                          "rotate=-5*PI/180:fillcolor=black")
    match, relations = sole_match(check_json(env, query), "big-buck-bunny.mp4")
    assert abs(relations["rotated"] + 5.0) <= 0.5, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 9.0


def test_vertical_repost_on_a_blurred_copy_of_itself_is_found(indexed, tmp_path):
    """The 9:16 repost: footage centred on an enlarged, blurred copy of itself. The
    basketball clip's plain floor leaves little more detail than the fill's
    compression noise, so only the step in detail at the footage's edge finds it."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "vertical.mp4",
                       extra=_on_blurred_copy(540, 960))
    report = check_json(env, query)
    match, relations = sole_match(report, "basketball.mp4")
    assert "reframed" in relations and "inside_other_footage" not in relations, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 6.0


@pytest.mark.parametrize("sample, canvas", [("big-buck-bunny.mp4", (540, 960)),
                                            ("his-girl-friday.mp4", (854, 480))])
def test_footage_on_a_lightly_blurred_copy_of_itself_is_found(indexed, tmp_path, sample, canvas):
    """A light blur (sigma 8) leaves the fill almost as busy as the footage, so
    detail cannot tell them apart, whether the fill is above and below (a 9:16
    repost) or on both sides (4:3 footage on a 16:9 broadcast). The fill shows the
    footage enlarged: the band whose enlargement predicts it is the footage."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / sample, tmp_path / "on-blur.mp4",
                       extra=_on_blurred_copy(*canvas, sigma=8))
    report = check_json(env, query)
    match, relations = sole_match(report, sample)
    assert "reframed" in relations and "inside_other_footage" not in relations, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 5.5


def test_cropped_mirrored_vertical_repost_with_a_title_is_found(indexed, tmp_path):
    """The TikTok re-edit: zoomed in, flipped, on a blurred 9:16 copy of itself,
    titled on the fill above the footage. (Scores 0.58; the same edit at 85 % or
    90 % scores 0.36-0.43 against the 0.40 threshold: the chain of scalings
    costs ~20 bits a frame.)"""
    _, env = indexed
    font = _bold_font()
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "tiktok.mp4",
                       extra=_on_blurred_copy(
                           540, 960, before="crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2,hflip",
                           after=f"drawtext=fontfile={font}:text='wait for it':x=(w-tw)/2:"
                                 "y=h*0.08:fontsize=48:fontcolor=white:borderw=3:bordercolor=black"))
    report = check_json(env, query)
    _, relations = sole_match(report, "big-buck-bunny.mp4")
    assert "mirrored" in relations and abs(relations["cropped"] - 0.8) <= 0.03, relations


def test_framed_clip_under_a_news_ticker_is_found(indexed, tmp_path):
    """The news repost: cropped to 90 %, halved, framed in black, a red banner with
    scrolling text over the bottom of the frame. The banner's text reads as
    footage, so only the frame's width on the other three sides closes the
    footage's box at the bottom, and the centre of that box meets the indexed
    centre at the 90 % rung."""
    _, env = indexed
    font = _bold_font()
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "news.mp4", start=2.0,
                       duration=6.0, vf=(
        "crop=576:324,scale=288:162,pad=334:208:23:23:color=black,"
        "drawbox=x=0:y=ih*0.88:w=iw:h=ih*0.12:color=0xC00000@0.95:t=fill,"
        f"drawtext=fontfile={font}:text='BREAKING NEWS - unverified video':x=w-t*80:"
        "y=h*0.94-th/2:fontsize=14:fontcolor=white"))
    report = check_json(env, query)
    match, relations = sole_match(report, "big-buck-bunny.mp4")
    assert abs(relations["cropped"] - 0.9) <= 0.04, relations
    start, end = match["reference_segment"]
    assert abs(start - 2.0) <= 0.5 and abs(end - 8.0) <= 0.5


def test_clip_squeezed_into_a_news_graphic_beside_a_panel_and_over_a_ticker_is_found(
        indexed, tmp_path):
    """The broadcast squeezeback: the footage shrunk to 75 % in the top right, a
    flat panel with a title down the left, a scrolling ticker along the bottom.
    Missed before on three counts: the ticker's text ran under the panel, so
    the panel's columns read as footage; the title's margin equals the
    footage's on the right (and the flat red under the ticker's text the
    margin on top), which read as footage centred in fill; and the ticker's
    top edge bridged the flat rows between the ticker and the footage."""
    _, env = indexed
    font = _bold_font()
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "squeeze.mp4", extra=[
        "-t", "5", "-filter_complex",
        "[0:v]fps=30,scale=480:270,setsar=1[v];color=c=0x1a3a6a:s=640x360:d=5[bg];"
        "[bg][v]overlay=140:20:shortest=1,drawbox=x=0:y=305:w=640:h=55:color=0xc00000:t=fill,"
        f"drawtext=fontfile={font}:text='BREAKING NEWS - soldier surrenders':x=w-t*60:"
        f"y=332-th/2:fontsize=24:fontcolor=white,drawtext=fontfile={font}:text='LIVE':x=20:"
        "y=30:fontsize=28:fontcolor=white", "-t", "5"])
    match, _ = sole_match(check_json(env, query), "basketball.mp4")
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 4.5, match["reference_segment"]


def test_clip_shown_small_in_a_corner_of_other_footage_is_found(indexed, tmp_path):
    """Picture-in-picture at 35 % of the width over other moving pictures (ffmpeg's
    test pattern): the inset is found from the straight seams where neighbouring
    pixels stop changing together, although scaling blends the two pictures
    along them."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "pip.mp4", extra=[
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=10", "-filter_complex",
        "[0:v]scale=224:126,setsar=1[fg];[1:v][fg]overlay=396:216:shortest=1"])
    report = check_json(env, query)
    _, relations = sole_match(report, "big-buck-bunny.mp4")
    # 224x126 of 640x360: 12 % of the picture.
    assert 0.09 < relations["inside_other_footage"] < 0.16, relations


def test_still_camera_clip_shown_small_on_a_still_picture_is_found(indexed, tmp_path):
    """Nothing correlates across the seams of a still shot (an old film's two-shot)
    shown in the corner of a still picture, so the inset is found from the steps
    that stand still between the two pictures and from its moving part; mirrored
    too, as reaction videos often are."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "his-girl-friday.mp4", tmp_path / "still-pip.mp4", extra=[
        "-i", str(SAMPLES / "unrelated.mp4"), "-filter_complex",
        "[0:v]scale=224:168,setsar=1,hflip[fg];"
        "[1:v]trim=end_frame=1,loop=loop=-1:size=1,scale=640:480,setsar=1[bg];"
        "[bg][fg]overlay=400:290:shortest=1"])
    report = check_json(env, query)
    _, relations = sole_match(report, "his-girl-friday.mp4")
    # 224x168 of 640x480: 12 % of the picture.
    assert "mirrored" in relations and 0.09 < relations["inside_other_footage"] < 0.16, relations


def _page_recording(sample: str, target) -> str:
    """A desktop's screen recording of ``sample`` playing in a web page: a 16:9
    player off the page's centre (black bars beside 4:3 footage), its controls
    over the bottom of the footage and a pointer on it, a header, a column of
    other videos' thumbnails and a title line under the player; 30 fps."""
    boxes = ["0:0:1280:58:0x202a44", "64:491:794:49:black@0.55", "74:491:774:4:red",
             "593:242:10:16:white", "64:556:420:20:0x303030"]
    boxes += [f"910:{94 + 144 * i}:140:100:0x9a9a9a" for i in range(4)]
    boxes += [f"1062:{100 + 144 * i}:150:14:0x606060" for i in range(4)]
    drawn = ",".join("drawbox=x={}:y={}:w={}:h={}:color={}:t=fill".format(*b.split(":"))
                     for b in boxes)
    return str(ffmpeg_cut(SAMPLES / sample, target, extra=[
        "-filter_complex",
        "[0:v]scale=794:446:force_original_aspect_ratio=decrease,setsar=1,"
        "pad=794:446:(ow-iw)/2:(oh-ih)/2[fg];color=c=0xf4f4f4:s=1280x720:r=30[bg];"
        f"[bg][fg]overlay=64:92:shortest=1,{drawn}"]))


def _app_recording(sample: str, target) -> str:
    """A phone's screen recording of ``sample`` playing in a vertical video app:
    the footage across the screen's width, a status bar, the app's buttons down
    the right over the footage's edge and below it, the poster's name and caption
    and a progress bar along the bottom; 30 fps."""
    boxes = ["0:0:540:38:black", "464:12:38:16:white", "20:826:170:20:white",
             "20:860:300:14:0xdddddd", "0:954:540:3:gray", "0:954:216:3:white"]
    boxes += [f"464:{480 + 82 * i}:54:54:white@0.9" for i in range(3)]
    drawn = ",".join("drawbox=x={}:y={}:w={}:h={}:color={}:t=fill".format(*b.split(":"))
                     for b in boxes)
    return str(ffmpeg_cut(SAMPLES / sample, target, extra=[
        "-vf", "scale=540:960:force_original_aspect_ratio=decrease,setsar=1,"
               f"pad=540:960:(ow-iw)/2:(oh-ih)/2,eq=gamma=1.06,fps=30,{drawn}"]))


@pytest.mark.parametrize("record, sample", [(_page_recording, "big-buck-bunny.mp4"),
                                            (_page_recording, "his-girl-friday.mp4"),
                                            (_app_recording, "his-girl-friday.mp4")])
def test_screen_recording_of_a_clip_playing_in_a_page_or_an_app_is_found(indexed, tmp_path,
                                                                         record, sample):
    """The footage is the one picture that moves in a drawn one; its box is closed
    where drawn pixels, which never change, begin. A still two-shot moves only in
    part, and the app's buttons over its edge do not cut the box short there."""
    _, env = indexed
    report = check_json(env, record(sample, tmp_path / "recording.mp4"))
    match, relations = sole_match(report, sample)
    assert "inside_other_footage" in relations, relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= 5.5, match["reference_segment"]


@pytest.mark.parametrize("letterboxed", [False, True])
def test_split_screen_of_two_indexed_clips_lists_both_each_in_its_half(indexed, tmp_path,
                                                                      letterboxed):
    """Two clips side by side (a 32:9 picture, wider than any camera shoots, maybe
    letterboxed into 16:9): each half is searched whatever the seam between them
    shows. The seam-based inset finder alone missed these and both copies below."""
    _, env = indexed
    query = _side_by_side(SAMPLES / "tears-of-steel.mp4", SAMPLES / "basketball.mp4",
                          tmp_path / "split.mp4", then=",pad=1280:720:0:180" if letterboxed else "")
    report = check_json(env, query)
    found = {m["video"]["source"]: {r["kind"]: r["value"] for r in m["relations"]}
             for m in report["matches"]}
    assert set(found) == {str(SAMPLES / "tears-of-steel.mp4"), str(SAMPLES / "basketball.mp4")}
    share = 0.25 if letterboxed else 0.5
    assert all(relations["inside_other_footage"] == share for relations in found.values()), found


@pytest.mark.parametrize("sample, other, mirror", [
    ("basketball.mp4", "unrelated.mp4", False),
    ("big-buck-bunny.mp4", "big-buck-bunny.mp4", True)])
def test_clip_beside_other_footage_or_its_own_mirror_image_is_found(indexed, tmp_path, sample,
                                                                  other, mirror):
    _, env = indexed
    query = _side_by_side(SAMPLES / sample, SAMPLES / other, tmp_path / "beside.mp4",
                          mirror_right=mirror)
    _, relations = sole_match(check_json(env, query), sample)
    assert relations["inside_other_footage"] == 0.5, relations


def _side_by_side(left, right, target, mirror_right: bool = False, then: str = ""):
    """5 s of ``left`` and ``right`` side by side, each 640x360, then the filters ``then``."""
    flip = ",hflip" if mirror_right else ""
    return ffmpeg_cut(left, target, extra=[
        "-t", "5", "-i", str(right), "-filter_complex",
        "[0:v]fps=24,scale=640:360,setsar=1[a];"
        f"[1:v]fps=24,scale=640:360,setsar=1{flip}[b];[a][b]hstack=inputs=2:shortest=1{then}",
        "-t", "5"])


def test_two_clips_stacked_in_a_vertical_frame_are_both_found(indexed, tmp_path):
    """Two 16:9 clips one above the other, letterboxed into 9:16: an ordinary
    shape, found by the seam across it (missed before: smaller boxes inside
    basketball's footage ranked first)."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "tears-of-steel.mp4", tmp_path / "stacked.mp4", extra=[
        "-t", "5", "-i", str(SAMPLES / "basketball.mp4"), "-filter_complex",
        "[0:v]fps=24,scale=720:406,setsar=1[a];[1:v]fps=24,scale=720:406,setsar=1[b];"
        "[a][b]vstack=inputs=2:shortest=1,pad=720:1280:0:234", "-t", "5"])
    found = {m["video"]["source"]: {r["kind"]: r["value"] for r in m["relations"]}
             for m in check_json(env, query)["matches"]}
    assert set(found) == {str(SAMPLES / "tears-of-steel.mp4"), str(SAMPLES / "basketball.mp4")}
    # 720x406 of 720x1280: 32 % of the picture.
    assert all(0.3 < relations["inside_other_footage"] < 0.34 for relations in found.values())


def test_clip_above_other_footage_in_the_reaction_layout_is_found(indexed, tmp_path):
    """The clip on top of a 9:16 frame, the reacting face (other footage) below."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "reaction.mp4", extra=[
        "-t", "5", "-i", str(SAMPLES / "unrelated.mp4"), "-filter_complex",
        "[0:v]fps=24,scale=720:406,setsar=1[a];[1:v]fps=24,scale=720:874:"
        "force_original_aspect_ratio=increase,crop=720:874,setsar=1[b];"
        "[a][b]vstack=inputs=2:shortest=1", "-t", "5"])
    _, relations = sole_match(check_json(env, query), "basketball.mp4")
    assert 0.3 < relations["inside_other_footage"] < 0.34, relations


@pytest.mark.parametrize("background, blur", [("unrelated.mp4", ""),
                                               ("basketball.mp4", ",gblur=sigma=20")])
def test_clip_shown_centred_at_70_percent_on_other_footage_is_found(indexed, tmp_path,
                                                                  background, blur):
    """Footage shown centred and smaller, its shape kept, on other footage or on a
    blurred copy of itself: four seams symmetric about the centre at one margin
    close the box, however faint each side is where the two pictures move alike
    (both copies were missed when every side had to be supported)."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "centred.mp4", extra=[
        "-t", "5", "-i", str(SAMPLES / background), "-filter_complex",
        f"[1:v]fps=24,scale=640:360,setsar=1{blur}[bg];[0:v]fps=24,scale=448:252,setsar=1[fg];"
        "[bg][fg]overlay=96:54:shortest=1", "-t", "5"])
    _, relations = sole_match(check_json(env, query), "basketball.mp4")
    # 448x252 of 640x360: 49 % of the picture.
    assert 0.45 < relations["inside_other_footage"] < 0.53, relations


def test_trim_of_another_clip_is_aligned_within_a_second(indexed, tmp_path):
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "tears-of-steel.mp4", tmp_path / "tos-cut.mp4",
                       start=3.0, duration=5.0, vf="scale=-2:200")
    report = check_json(env, query)
    match, _ = sole_match(report, "tears-of-steel.mp4")
    start, end = match["reference_segment"]
    assert abs(start - 3.0) <= 1.0 and abs(end - 8.0) <= 1.0


def test_reversed_copy_is_found_aligned_backwards_and_said_to_be_reversed(indexed, tmp_path):
    """Footage played backwards (a retreat passed for an advance): the query's
    later frames meet the reference's earlier ones, at speed -1."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / "basketball.mp4", tmp_path / "reversed.mp4", start=1.0,
                       vf="trim=duration=4,setpts=PTS-STARTPTS,reverse")
    match, relations = sole_match(check_json(env, query), "basketball.mp4")
    assert "reversed" in relations and "speed_changed" not in relations, relations
    assert match["alignment"]["speed"] == pytest.approx(-1.0, abs=0.05)
    start, end = match["reference_segment"]
    assert abs(start - 1.0) <= 0.5 and abs(end - 5.0) <= 0.5, match["reference_segment"]
    text = run_cli("check", str(query), env=env).stdout
    assert "backwards" in text and "- reversed: plays the footage backwards" in text, text


@pytest.fixture(scope="module")
def fast_indexed(tmp_path_factory):
    """An index of the fast-motion sample and one other clip."""
    root = tmp_path_factory.mktemp("fast")
    env = _env(root)
    done = run_cli("add", str(SAMPLES / "fast-conveyor.mp4"), str(SAMPLES / "basketball.mp4"),
                   env=env)
    assert done.returncode == 0, done.stderr
    return root, env


@pytest.mark.parametrize("vf, speed", [("setpts=PTS/1.5", 1.5), ("setpts=1.5*PTS", 2 / 3),
                                       ("reverse", -1.0), ("fps=10", 1.0)])
def test_fast_footage_sped_up_slowed_reversed_or_at_10_fps_is_found(fast_indexed, tmp_path,
                                                                   vf, speed):
    """Vegetables slide along a conveyor: between two samples 0.125 s apart the
    picture changes by more than the match radius, and each copy's frames fall
    between the original's samples. Indexed at its samples only, the sped-up
    copy scored 0.08 and the reversed one 0.02."""
    _, env = fast_indexed
    query = ffmpeg_cut(SAMPLES / "fast-conveyor.mp4", tmp_path / "copy.mp4", vf=vf)
    match, relations = sole_match(check_json(env, query), "fast-conveyor.mp4")
    assert match["score"] >= 0.6, match["score"]
    assert match["alignment"]["speed"] == pytest.approx(speed, abs=0.05), match["alignment"]
    assert ("reversed" in relations) == (speed < 0), relations
    if abs(speed) != 1.0:
        assert relations["speed_changed"] == pytest.approx(abs(speed), abs=0.05), relations


@pytest.mark.parametrize("sample, vf, shape", [
    ("big-buck-bunny.mp4", "crop=trunc(ih*9/16/2)*2:ih,scale=360:640", 9 / 16),
    ("tears-of-steel.mp4", "crop=ih:ih,scale=480:480", 1.0),
    ("basketball.mp4", "crop=trunc(ih*4/5/2)*2:ih,scale=432:540", 4 / 5),
    ("his-girl-friday.mp4", "crop=iw:trunc(iw*9/16/2)*2,scale=640:360", 16 / 9)])
def test_copy_a_platform_cropped_to_fill_another_shape_is_found(indexed, tmp_path, sample, vf,
                                                                   shape):
    """Platforms fill their frame by cropping, centred: a landscape clip to 9:16,
    square or 4:5 keeping its full height, a 4:3 one to 16:9 keeping its full width.
    The centre crops of the zoom ladder keep the shape, so none of these was found."""
    _, env = indexed
    query = ffmpeg_cut(SAMPLES / sample, tmp_path / "filled.mp4", vf=vf)
    match, relations = sole_match(check_json(env, query), sample)
    width, height = match["video"]["width"], match["video"]["height"]
    assert relations["reframed"] == pytest.approx(shape / (width / height), rel=0.02), relations
    start, end = match["reference_segment"]
    assert start <= 0.5 and end >= match["video"]["duration_s"] - 1.0, match["reference_segment"]


def test_original_is_found_from_the_platform_crop_indexed_before_it(tmp_path):
    """The vertical repost was indexed first; the landscape original checked
    later meets it on its own centred 9:16 part."""
    crop = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "vertical.mp4",
                      vf="crop=trunc(ih*9/16/2)*2:ih,scale=360:640")
    env = _env(tmp_path)
    assert run_cli("add", str(crop), env=env).returncode == 0
    report = check_json(env, SAMPLES / "big-buck-bunny.mp4")
    assert [m["video"]["source"] for m in report["matches"]] == [str(crop)]
    relations = {r["kind"]: r for r in report["matches"][0]["relations"]}
    assert relations["reframed"]["value"] == pytest.approx((16 / 9) / (9 / 16), rel=0.02)
    assert "centred 9:16 part" in relations["reframed"]["evidence"]


def test_two_clips_shown_in_the_same_studio_graphic_are_not_the_same_footage(tmp_path):
    """A newsroom's index holds many clips framed by the same graphic. Two clips
    in one detailed, still frame (a picture around a window) share every
    keypoint outside the window: that is not the same footage."""
    env = _env(tmp_path)
    backdrop = tmp_path / "backdrop.png"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "3", "-i",
                    str(SAMPLES / "basketball.mp4"), "-frames:v", "1", str(backdrop)], check=True)
    framed = {}
    for name in ("tears-of-steel", "his-girl-friday"):
        framed[name] = tmp_path / f"studio-{name}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i",
                        str(backdrop), "-i", str(SAMPLES / f"{name}.mp4"), "-filter_complex",
                        "[0]scale=1280:720[bg];[1]scale=480:-2[fg];[bg][fg]overlay=60:60:shortest=1",
                        "-t", "8", "-an", "-c:v", "libx264", "-crf", "26", "-pix_fmt", "yuv420p",
                        str(framed[name])], check=True)
    assert run_cli("add", str(framed["tears-of-steel"]), env=env).returncode == 0
    assert check_json(env, framed["his-girl-friday"])["matches"] == []
    # The window's own footage is still found.
    sole_match_at(check_json(env, ffmpeg_cut(framed["tears-of-steel"], tmp_path / "again.mp4",
                                            vf="scale=960:-2")), framed["tears-of-steel"])


def test_unrelated_clip_lists_nothing(indexed):
    _, env = indexed
    report = check_json(env, SAMPLES / "unrelated.mp4")
    assert report["matches"] == []
    assert report["earliest_sighting"] is None
    done = run_cli("check", str(SAMPLES / "unrelated.mp4"), env=env)
    assert "No indexed video shares footage" in done.stdout


def test_report_has_the_documented_top_level_fields(indexed):
    _, env = indexed
    report = check_json(env, SAMPLES / "repost-big-buck-bunny.mp4")
    for key in ("schema_version", "query", "matches", "earliest_sighting", "tool", "created_at"):
        assert key in report
    assert report["query"]["sha256"] and report["query"]["keyframe_count"] > 0
    assert set(report["tool"]) >= {"provenance", "yt_dlp", "ffmpeg"}
    video = report["matches"][0]["video"]
    assert {"id", "url", "title", "uploader", "upload_time", "sightings", "source"} <= set(video)


def test_check_add_indexes_the_query_afterwards(indexed, tmp_path):
    root, env = indexed
    env = {**env, "PROVENANCE_DB": str(tmp_path / "copy.db")}
    shutil.copy(root / "index.db", tmp_path / "copy.db")
    query = SAMPLES / "unrelated.mp4"
    first = check_json(env, query)
    assert first["matches"] == []
    done = run_cli("check", str(query), "--add", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["matches"] == []  # checked against the index before adding
    again = check_json(env, query)
    assert [m["video"]["source"] for m in again["matches"]] == [str(query)]
    assert again["matches"][0]["relations"][0]["kind"] == "identical_file"


def test_text_report_names_the_match_and_segments(indexed):
    _, env = indexed
    done = run_cli("check", str(SAMPLES / "repost-big-buck-bunny.mp4"), env=env)
    assert done.returncode == 0
    assert "big-buck-bunny.mp4" in done.stdout
    assert "reference" in done.stdout and "Earliest known sighting" in done.stdout


def test_list_show_stats_remove(indexed, tmp_path):
    root, env = indexed
    env = {**env, "PROVENANCE_DB": str(tmp_path / "copy.db")}
    shutil.copy(root / "index.db", tmp_path / "copy.db")
    listed = run_cli("list", env=env).stdout.strip().splitlines()
    assert len(listed) == 4
    shown = run_cli("show", "1", env=env)
    assert shown.returncode == 0 and "sha256" in shown.stdout and "big-buck-bunny" in shown.stdout
    stats = run_cli("stats", env=env).stdout
    assert "videos           4" in stats
    assert run_cli("remove", "1", env=env).returncode == 0
    assert len(run_cli("list", env=env).stdout.strip().splitlines()) == 3
    missing = run_cli("show", "99", env=env)
    assert missing.returncode != 0 and "no video #99" in missing.stderr
    report = check_json(env, SAMPLES / "repost-big-buck-bunny.mp4")
    assert report["matches"] == []


def test_an_index_from_before_the_centre_hashes_finds_crops_once_rehashed(tmp_path):
    """An index built before each keyframe's centre was stored (made here by
    deleting those rows) misses an 80 % crop. `rehash` hashes its videos again from
    their files, after which the crop is found. A video whose file has gone is
    reported, with exit code 3, and kept as it was, until its file is added again."""
    moved = tmp_path / "moved-since.mp4"
    shutil.copy(SAMPLES / "tears-of-steel.mp4", moved)
    env = _indexed_before(tmp_path, CENTRE_VIEWS, SAMPLES / "big-buck-bunny.mp4", moved)
    moved.rename(tmp_path / "elsewhere.mp4")
    crop = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "crop.mp4",
                      vf="crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2,scale=640:-2")
    assert check_json(env, crop)["matches"] == []
    assert "to_rehash        2\n" in run_cli("stats", env=env).stdout
    listed_before = run_cli("list", env=env).stdout

    done = run_cli("rehash", env=env)
    assert done.returncode == 3, done.stderr
    rehashed, failed = done.stdout.strip().splitlines()
    assert rehashed.startswith("rehashed video #1 (") and rehashed.endswith("big-buck-bunny.mp4")
    assert failed.startswith("failed video #2: no file with its bytes is at hand"), failed
    assert f"add it again from its source ({moved})" in failed

    _, relations = sole_match(check_json(env, crop), "big-buck-bunny.mp4")
    assert abs(relations["cropped"] - 0.8) <= 0.03, relations
    assert "to_rehash        1\n" in run_cli("stats", env=env).stdout
    assert run_cli("list", env=env).stdout == listed_before
    # The same bytes added again from wherever they are now: a new sighting, and
    # the video is hashed anew.
    again = run_cli("add", str(tmp_path / "elsewhere.mp4"), env=env)
    assert again.stdout.startswith("new sighting, rehashed "), again.stdout
    assert "to_rehash        0\n" in run_cli("stats", env=env).stdout


@pytest.mark.parametrize("kept_views,sample,vf,method", [
    (REFRAMED_VIEWS, "big-buck-bunny.mp4", "crop=trunc(ih*9/16/2)*2:ih,scale=360:640",
     "frame_hashes"),
    ((), "tears-of-steel.mp4", OFF_CENTRE_CROP_60,
     "keypoints"),
], ids=["reframings", "keypoints"])
def test_an_index_from_before_a_stored_part_finds_its_copies_once_rehashed(
        tmp_path, kept_views, sample, vf, method):
    """An index built before the centred 9:16 and 16:9 parts, or the keypoints,
    were stored misses a vertical crop, or an off-centre crop; it counts its video
    as to rehash, and finds the crop once `rehash` has stored them."""
    env = _indexed_before(tmp_path, kept_views, SAMPLES / sample)
    crop = ffmpeg_cut(SAMPLES / sample, tmp_path / "crop.mp4", vf=vf)
    assert check_json(env, crop)["matches"] == []
    assert "to_rehash        1\n" in run_cli("stats", env=env).stdout
    done = run_cli("rehash", env=env)
    assert done.returncode == 0 and done.stdout.startswith("rehashed video #1 ("), done.stdout
    match, _ = sole_match(check_json(env, crop), sample)
    assert match["method"] == method
    assert "to_rehash        0\n" in run_cli("stats", env=env).stdout


def _frames(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM frames ORDER BY video_id, view, seq").fetchall()
    conn.close()
    return rows


def test_an_index_from_before_motion_samples_finds_fast_copies_once_rehashed(tmp_path):
    """An index from before the frames of fast motion between the samples were
    kept (sampling version 3; made here by marking its videos version 2 and
    deleting those frames, and the keypoints, which came later) misses a
    reversed copy of fast footage and counts every video as to rehash. `rehash` takes each video's frames again, as a
    fresh index has them, and the copy is found."""
    env = _env(tmp_path)
    fast = SAMPLES / "fast-conveyor.mp4"
    assert run_cli("add", str(fast), str(SAMPLES / "big-buck-bunny.mp4"), env=env).returncode == 0
    fresh = _frames(tmp_path / "index.db")
    info = probe(fast)
    samples = [k.t for k in extract(fast, Settings(), info.duration_s, info.frame_rate)]
    count = "SELECT count(*) FROM frames WHERE video_id = 1 AND view = 0"
    with sqlite3.connect(tmp_path / "index.db") as conn:
        assert conn.execute(count).fetchone()[0] > 1.5 * len(samples)
        conn.execute("UPDATE videos SET sampling = 2, features_version = 0")
        conn.execute("DELETE FROM features")
        conn.execute(f"DELETE FROM frames WHERE video_id = 1 AND round(t, 3) NOT IN "
                     f"({','.join(map(str, samples))})")
        assert conn.execute(count).fetchone()[0] == len(samples)
    conn.close()
    shutil.rmtree(tmp_path / "index.db.search")
    reversed_copy = ffmpeg_cut(fast, tmp_path / "reversed.mp4", vf="reverse")
    assert check_json(env, reversed_copy)["matches"] == []
    assert "to_rehash        2\n" in run_cli("stats", env=env).stdout

    done = run_cli("rehash", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(" (")[0] for line in done.stdout.strip().splitlines()] == [
        "rehashed video #1", "rehashed video #2"]
    assert _frames(tmp_path / "index.db") == fresh
    _, relations = sole_match(check_json(env, reversed_copy), "fast-conveyor.mp4")
    assert "reversed" in relations, relations
    assert "to_rehash        0\n" in run_cli("stats", env=env).stdout


def test_rehash_uses_another_place_the_same_file_was_seen(tmp_path):
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    for copy in (first, second):
        shutil.copy(SAMPLES / "his-girl-friday.mp4", copy)
    env = _indexed_before(tmp_path, CENTRE_VIEWS, first, second)
    first.unlink()
    done = run_cli("rehash", env=env)
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("rehashed video #1 (") and done.stdout.strip().endswith(str(second))


def test_a_clip_under_a_second_is_found_as_the_very_file_indexed(tmp_path):
    # Two or three frames cannot reach the score a match needs on frames alone;
    # the same bytes are the same footage all the same.
    env = _env(tmp_path)
    short = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "short.mp4", start=2.0,
                       duration=0.5)
    assert run_cli("add", str(short), env=env).returncode == 0
    report = check_json(env, short)
    assert [m["video"]["source"] for m in report["matches"]] == [str(short)]
    assert "identical_file" in {r["kind"] for r in report["matches"][0]["relations"]}


def test_a_one_frame_video_is_never_said_to_be_sped_up(tmp_path):
    # One instant of the reference fits any speed: an alignment read from it
    # would claim a speed change no frame showed.
    env = _env(tmp_path)
    one = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "one.mp4", start=3.0,
                     extra=["-frames:v", "1"])
    assert run_cli("add", str(one), env=env).returncode == 0
    query = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "around.mp4", start=2.0,
                       duration=2.0)
    for match in check_json(env, query)["matches"]:
        assert match["alignment"]["speed"] == 1.0, match
        assert "speed_changed" not in {r["kind"] for r in match["relations"]}, match


def test_a_short_clip_played_in_a_loop_is_aligned_at_its_own_speed(tmp_path):
    # Fitted to all its frames at once, a clip played three times looked slowed
    # down to under half speed: each pass meets the footage at speed 1 again.
    env = _env(tmp_path)
    clip = ffmpeg_cut(SAMPLES / "big-buck-bunny.mp4", tmp_path / "clip.mp4", start=2.0,
                      duration=4.0)
    assert run_cli("add", str(clip), env=env).returncode == 0
    looped = tmp_path / "looped.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "2", "-i", str(clip),
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", str(looped)],
                   check=True, capture_output=True)
    match, relations = sole_match_at(check_json(env, looped), clip)
    assert match["alignment"]["speed"] == 1.0 and "speed_changed" not in relations, match
    assert relations.get("repeated") == 3, relations
    start, end = match["reference_segment"]
    assert start <= 0.3 and end >= 3.7, match["reference_segment"]
    assert match["score"] >= 0.8
    text = run_cli("check", str(looped), env=env).stdout
    assert "- repeated: plays this footage 3 times" in text, text
