"""The parts of a keyframe that are hashed, in the picture's true proportions."""
from __future__ import annotations

import pytest

from provenance.views import FULL, Box, index_views, query_views, reframings


@pytest.mark.parametrize("aspect, parts", [(16 / 9, ["9:16"]), (2.39, ["9:16"]),
                                           (4 / 3, ["9:16", "16:9"]), (1.0, ["9:16", "16:9"]),
                                           (9 / 16, ["16:9"]), (0.6, ["16:9"])])
def test_every_footage_has_the_centred_parts_a_platform_crop_keeps(aspect, parts):
    found = reframings(FULL, aspect)
    assert [v.part for v in found] == parts
    for view in found:
        shape = 9 / 16 if view.part == "9:16" else 16 / 9
        assert view.box.shape(aspect) == pytest.approx(shape)
        assert view.box.x0 + view.box.x1 == pytest.approx(1.0)  # centred
        assert view.box.y0 + view.box.y1 == pytest.approx(1.0)
        # The full height of a strip, the full width of a band.
        kept = (view.box.y0, view.box.y1) if view.part == "9:16" else (view.box.x0, view.box.x1)
        assert kept == (0, 1)


def test_a_crop_and_its_original_share_the_part_in_each_one_s_coordinates():
    # A 16:9 original cropped to a centred square: the square's own 9:16 strip is
    # the original's, found the same way on either side.
    original = reframings(FULL, 16 / 9)[0].box
    square_strip = reframings(FULL, 1.0)[0].box
    square_in_original = 1.0 / (16 / 9)  # the square's share of the original's width
    left = 0.5 - square_in_original / 2
    assert left + square_strip.x0 * square_in_original == pytest.approx(original.x0)
    assert left + square_strip.x1 * square_in_original == pytest.approx(original.x1)


def test_parts_are_taken_inside_the_footage_s_box_and_stored_and_tried_alike():
    # 16:9 footage letterboxed in a 4:3 picture: its strip, no band.
    box = Box(0.0, 0.125, 1.0, 0.875)
    stored = {v.name: v for v in index_views(box, 4 / 3)}
    assert "band" not in stored
    assert stored["strip"].box.y0 == 0.125 and stored["strip"].box.shape(4 / 3) == \
        pytest.approx(9 / 16)
    # The whole picture's parts too (a flat edge that passed for padding here
    # may not in a crop), but its 16:9 band, which is the footage itself.
    assert stored["full-strip"].box.shape(4 / 3) == pytest.approx(9 / 16)
    assert stored["full-strip"].box.y0 == 0.0 and "full-band" not in stored
    tried = {v.name: v for v in query_views(box, 4 / 3)}
    for name in ("strip", "full-strip"):
        assert tried[name] == stored[name]
    assert tried["strip-mirrored"].mirrored and tried["strip-mirrored"].box == stored["strip"].box
    # Unknown proportions are taken as square: both parts, so a video always has one.
    assert {"strip", "band"} <= {v.name for v in index_views(FULL)}


def test_a_whole_picture_part_that_is_the_footage_again_is_not_stored_twice():
    # 16:9 footage letterboxed in 9:16 is its whole picture's 16:9 part, give or
    # take the box's pixel.
    box = Box(0.0, 0.3428, 1.0, 0.6575)
    stored = [v.name for v in index_views(box, 9 / 16)]
    assert stored == ["content", "centre", "strip", "full", "full-centre"]
    assert "full-band" not in [v.name for v in query_views(box, 9 / 16)]
    # A box off by more keeps it (a dark edge taken for padding in one copy).
    assert "full-band" in [v.name for v in index_views(Box(0.0, 0.36, 1.0, 0.6575), 9 / 16)]


@pytest.mark.parametrize("box, uneven", [
    (Box(0.22, 0.0, 1.0, 1.0), True),     # a wall along one edge
    (Box(0.0, 0.08, 1.0, 1.0), True),
    (Box(0.0, 0.2, 1.0, 0.8), False),     # letterbox bars
    (Box(0.1, 0.1, 0.9, 0.9), False),     # a border
    (Box(0.1, 0.1, 0.895, 0.9), False),   # within UNEVEN_PADDING
    (FULL, False)])
def test_only_padding_uneven_on_an_axis_has_the_picture_s_own_centre_tried_at_each_zoom(
        box, uneven):
    names = {view.name for view in query_views(box, 16 / 9)}
    full_zooms = {name for name in names if name.startswith("full-zoom-")}
    assert bool(full_zooms) == uneven
    if uneven:
        footage_zooms = {name for name in names if name.startswith("zoom-")}
        assert {name.removeprefix("full-") for name in full_zooms} == footage_zooms
