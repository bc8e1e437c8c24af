"""Inset proposals: the halves of a picture no camera shoots, and centred insets."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from provenance.insets import _centred, _lines, _moving_picture, _seams, _split, region_proposals
from provenance.padding import content_box
from provenance.views import Box

STILL = [np.full((256, 256), 128, np.uint8)] * 8  # nothing for the seam finder


@pytest.mark.parametrize("aspect, footage, halves", [
    (32 / 9, Box(), [Box(0, 0, 0.5, 1), Box(0.5, 0, 1, 1)]),
    (9 / 32, Box(), [Box(0, 0, 1, 0.5), Box(0, 0.5, 1, 1)]),
    # Two 16:9 pictures side by side, letterboxed into 16:9.
    (16 / 9, Box(0, 0.25, 1, 0.75), [Box(0, 0.25, 0.5, 0.75), Box(0.5, 0.25, 1, 0.75)]),
])
def test_a_picture_too_wide_or_too_tall_for_a_camera_has_its_halves_proposed(
        aspect, footage, halves):
    assert region_proposals(STILL, aspect, footage) == halves


@pytest.mark.parametrize("aspect", [16 / 9, 2.39, 9 / 16, 1.0])
def test_pictures_a_camera_shoots_have_no_halves_proposed(aspect):
    assert region_proposals(STILL, aspect) == []


# Seam rows and columns of a 256x256 frame: a seam at line i lies after pixel i.
EDGES = [0, 255]


@pytest.mark.parametrize("rows, cols", [
    (EDGES + [37, 217], EDGES + [37, 217]),  # all four sides
    (EDGES + [217], EDGES + [37, 217]),  # the top side faded where both pictures moved alike
    (EDGES + [37, 217], EDGES + [37]),
])
def test_seams_of_a_centred_inset_close_its_box(rows, cols):
    box = _centred(sorted(rows), sorted(cols), 256, 256)
    assert box is not None and box.x0 == box.y0 == pytest.approx(38 / 256, abs=0.005)
    assert box.x1 == box.y1 == pytest.approx(1 - 38 / 256, abs=0.005)


@pytest.mark.parametrize("rows, cols", [
    (EDGES, EDGES + [37, 217]),  # caption rows or fill bands: one axis only
    (EDGES + [80], EDGES + [37, 217]),  # the other axis at another margin
    (EDGES + [37, 180], EDGES + [37, 180]),  # not symmetric
    (EDGES + [10, 244], EDGES + [10, 244]),  # about the whole picture
])
def test_lines_that_do_not_frame_a_centred_inset_close_nothing(rows, cols):
    assert _centred(sorted(rows), sorted(cols), 256, 256) is None



def _moving_texture(seed: int, step: int, frames: int = 12) -> list[np.ndarray]:
    """A smooth random picture panned ``step`` pixels a frame."""
    noise = np.random.default_rng(seed).uniform(0, 255, (256, 256)).astype(np.float32)
    picture = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 3), None, 0, 255, cv2.NORM_MINMAX)
    return [np.roll(picture, t * step, axis=1).astype(np.uint8) for t in range(frames)]


@pytest.mark.parametrize("seam", [128, 82])
def test_both_sides_of_a_seam_across_the_picture_are_proposed_first(seam):
    """Two clips one above the other in an ordinary frame (the 9:16 reaction
    layout) or side by side: the shape is no clue, the seam between them is.
    Boxes closed by the border ranked below smaller ones seamed on more sides,
    such as a still scoreboard in the lower clip."""
    frames = [np.vstack([a[:seam], b[seam:]])
              for a, b in zip(_moving_texture(1, 5), _moving_texture(2, -3))]
    for frame in frames:
        frame[seam + 30:seam + 70, 40:120] = 200
    cut = seam / 256
    assert region_proposals(frames, 9 / 16)[:2] == [Box(0, 0, 1, cut), Box(0, cut, 1, 1)]
    turned = [np.ascontiguousarray(frame.T) for frame in frames]
    assert region_proposals(turned, 16 / 9)[:2] == [Box(0, 0, cut, 1), Box(cut, 0, 1, 1)]


@pytest.mark.parametrize("bar", [218, 38])
def test_a_caption_bar_across_the_picture_is_not_taken_for_a_split_screen(bar):
    """A still bar over 15 % of moving footage, at the bottom or the top."""
    frames = [frame.copy() for frame in _moving_texture(3, 5)]
    for frame in frames:
        (frame[bar:] if bar > 128 else frame[:bar])[...] = 240
    rows, cols = _seams(np.stack(frames).astype(np.float32))
    lines = [line for line in _lines(rows)]
    assert any(abs(line - bar) <= 2 for line in lines)  # the seam is seen...
    assert _split(rows, cols, lines + [0, 255], [0, 255], Box()) == []  # ...and is no split


def test_a_clip_pillarboxed_in_its_half_is_proposed_inside_its_bars():
    """A vertical clip in the top half of a 9:16 reaction, black bars either side
    of it: that side is proposed without them. A flat white ground of the
    footage itself is no bars, however centred."""
    frames = [np.vstack([a[:128], b[128:]])
              for a, b in zip(_moving_texture(1, 5), _moving_texture(2, -3))]
    for frame in frames:
        frame[:128, :64] = frame[:128, 192:] = 0
    assert region_proposals(frames, 9 / 16)[0] == Box(0.25, 0, 0.75, 0.5)
    for frame in frames:
        frame[:128, :64] = frame[:128, 192:] = 255
    assert region_proposals(frames, 9 / 16)[0] == Box(0, 0, 1, 0.5)


def test_a_wide_clip_above_a_reaction_is_proposed_by_the_shape_it_shows():
    """A 2.39:1 clip atop a 9:16 frame takes 23 % of its height: too little for a
    split, and 4.3 times as wide as tall in the squashed frame, but 2.4:1 as
    shown, a shape footage has."""
    seam = 59  # 0.234 of 256
    frames = [np.vstack([a[:seam + 1], b[seam + 1:]])
              for a, b in zip(_moving_texture(1, 5), _moving_texture(2, -3))]
    proposals = region_proposals(frames, 9 / 16)
    assert Box(0, 0, 1, (seam + 1) / 256) in proposals, proposals


@pytest.mark.parametrize("seam, split", [(108, True), (100, False)])
def test_a_faint_seam_is_a_split_where_it_cuts_off_a_camera_shape(seam, split):
    """Two pictures stacked in a 9:16 frame, moving alike along a quarter of the
    seam between them. Cut at 108 of 256, the top is 4:3 as shown, a camera's
    shape, and is proposed; cut at 100 it is 1.44:1 and a line so faint is not."""
    frames = [np.vstack([a[:seam], b[seam:]])
              for a, b in zip(_moving_texture(1, 5), _moving_texture(2, -3))]
    for frame, a in zip(frames, _moving_texture(1, 5)):
        frame[:, :64] = a[:, :64]
    rows, cols = _seams(np.stack(frames).astype(np.float32))
    lines = _lines(rows)
    assert any(abs(line + 1 - seam) <= 1 for line in lines)
    sides = _split(rows, cols, lines + [0, 255], [0, 255], Box(), 9 / 16)
    if not split:
        assert sides == []
        return
    top, bottom = sides
    assert top.y1 == bottom.y0 == pytest.approx(seam / 256, abs=1.5 / 256)
    assert (top.x0, top.y0, top.x1, bottom.y1) == (0, 0, 1, 1)


def _drawn_page(footage: list[np.ndarray], box: tuple[int, int, int, int],
                film_noise: float = 0.0) -> list[np.ndarray]:
    """``footage`` shown at ``box`` (top, bottom, left, right) of a flat page
    with a column of thumbnails beside it, taller than the footage, and a button
    over the footage's right edge. With ``film_noise`` the page is a filmed
    still picture instead: it flickers by that many grey levels."""
    top, bottom, left, right = box
    page = np.full((256, 256), 235, np.float32)
    column = (slice(top - 20, bottom + 30), slice(right + 16, 250))
    page[column] = _moving_texture(9, 0, 1)[0][column]
    rng = np.random.default_rng(4)
    frames = []
    for picture in footage:
        frame = page + rng.normal(0, film_noise, page.shape)
        frame[top:bottom, left:right] = picture[top:bottom, left:right]
        frame[100:130, right - 12:right + 8] = 250
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def test_the_one_moving_picture_on_a_drawn_page_is_proposed_first():
    """A screen recording: footage playing off the page's centre, a column of
    thumbnails beside it and a button over its right edge. The seam beside the
    thumbnails splits the page, and that side was proposed in the footage's
    place. Drawn pixels never change; the box is closed where they begin."""
    frames = _drawn_page(_moving_texture(1, 5), (40, 170, 20, 180))
    first = region_proposals(frames, 16 / 9, content_box(frames, 16 / 9))[0]
    for got, want in zip((first.x0, first.y0, first.x1, first.y1), (20, 40, 180, 170)):
        assert got == pytest.approx(want / 256, abs=1.5 / 256), first


def test_a_moving_part_of_a_filmed_still_picture_is_not_taken_for_a_screen():
    """The same layout filmed: the still part flickers (1 grey level), so
    nothing beyond the moving part's sides is dead."""
    lines, columns, box = [0, 39, 169, 255], [0, 19, 179, 255], (40, 170, 20, 180)
    filmed = np.stack(_drawn_page(_moving_texture(1, 5), box, film_noise=1.0))
    assert _moving_picture(lines, columns, filmed.astype(np.float32).std(axis=0), Box(),
                           16 / 9) is None
    drawn = np.stack(_drawn_page(_moving_texture(1, 5), box))
    assert _moving_picture(lines, columns, drawn.astype(np.float32).std(axis=0), Box(),
                           16 / 9) == Box(20 / 256, 40 / 256, 180 / 256, 170 / 256)
