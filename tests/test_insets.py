"""Inset proposals: the halves of a picture no camera shoots."""
from __future__ import annotations

import numpy as np
import pytest

from provenance.insets import region_proposals
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
