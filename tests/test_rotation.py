"""Finding a picture turned inside its frame, with bars or without."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from provenance.keyframes import FRAME_SIZE
from provenance.rotation import rotation_of

ASPECT = 16 / 9
WIDTH, HEIGHT = 640, 360

TURN_TOLERANCE = 0.4  # degrees; PDQ forgives about half a degree


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Smooth random footage, grey 40-220: nothing in it is flat."""
    picture = cv2.GaussianBlur(rng.integers(40, 220, (HEIGHT, WIDTH), np.uint8), (0, 0), 3)
    return cv2.normalize(picture, None, 40, 220, cv2.NORM_MINMAX)


def _frames(degrees: float, bars: float, count: int = 4) -> list[np.ndarray]:
    """``count`` frames of textured footage, pillarboxed with black bars each
    ``bars`` of the width, turned ``degrees`` clockwise with them inside the
    frame (corners filled black), squashed square as keyframes arrive."""
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(count):
        picture = _texture(rng)
        margin = round(WIDTH * bars)
        picture[:, :margin] = 0
        picture[:, WIDTH - margin:] = 0
        matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), -degrees, 1.0)
        turned = cv2.warpAffine(picture, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
        frames.append(cv2.resize(turned, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA))
    return frames


@pytest.mark.parametrize("degrees", [5.0, -4.0])
def test_turned_footage_inside_bars_gives_the_turn_and_the_footage_box(degrees):
    rotation = rotation_of(_frames(degrees, bars=0.15), ASPECT)
    assert rotation is not None
    assert abs(rotation.degrees - degrees) <= TURN_TOLERANCE
    assert abs(rotation.box.x0 - 0.15) <= 0.015 and abs(rotation.box.x1 - 0.85) <= 0.015
    assert rotation.box.y0 <= 0.01 and rotation.box.y1 >= 0.99


def test_turned_full_frame_gives_the_turn_and_the_whole_picture():
    rotation = rotation_of(_frames(6.0, bars=0.0), ASPECT)
    assert rotation is not None and abs(rotation.degrees - 6.0) <= TURN_TOLERANCE
    assert rotation.box.is_full


@pytest.mark.parametrize("bars", [0.0, 0.15])
def test_upright_footage_is_not_taken_for_turned(bars):
    assert rotation_of(_frames(0.0, bars=bars), ASPECT) is None


@pytest.mark.parametrize("radius", [12, 40])
def test_footage_with_rounded_corners_is_not_taken_for_turned(radius):
    """Flat black corners (a phone's rounded screen, a vignette) and footage
    everywhere else: upright, and no bars to set upright."""
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(4):
        picture = _texture(rng)
        corners = np.zeros_like(picture)
        for x, y in ((0, 0), (WIDTH - 1, 0), (0, HEIGHT - 1), (WIDTH - 1, HEIGHT - 1)):
            cv2.circle(corners, (x, y), radius, 255, -1)
        picture[corners > 0] = 0
        frames.append(cv2.resize(picture, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA))
    assert rotation_of(frames, ASPECT) is None
