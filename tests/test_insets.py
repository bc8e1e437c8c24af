"""Inset proposals: the halves of a picture no camera shoots, and centred insets."""
from __future__ import annotations

import numpy as np
import pytest

from provenance.insets import _centred, region_proposals
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
