"""Where the footage sits: blurred fill told from footage by what it shows."""
from __future__ import annotations

import cv2
import numpy as np

from conftest import SAMPLES
from provenance.config import Settings
from provenance.keyframes import extract, probe
from provenance.padding import blurred_fill_band, content_box

SIZE = 256


def _footage(rng: np.random.Generator, frames: int, height: int) -> list[np.ndarray]:
    """Textured pictures panning right, ``height`` rows of the square frame's width."""
    world = cv2.GaussianBlur(rng.uniform(0, 255, (height, SIZE * 2)).astype(np.float32), (0, 0), 3)
    return [world[:, 4 * i:4 * i + SIZE] for i in range(frames)]


def _on_blurred_copy(picture: np.ndarray, sigma: float) -> np.ndarray:
    """The picture centred on an enlarged, blurred copy of itself covering the frame."""
    rows = (SIZE - picture.shape[0]) // 2
    share = picture.shape[0] / SIZE
    first = round(SIZE * (1 - share) / 2)
    cover = cv2.resize(picture[:, first:SIZE - first], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    frame = cv2.GaussianBlur(cover, (0, 0), sigma)
    frame[rows:rows + picture.shape[0]] = picture
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_footage_on_a_blurred_copy_of_itself_is_found_to_the_row():
    rng = np.random.default_rng(7)
    frames = [_on_blurred_copy(p, sigma=3.0) for p in _footage(rng, 16, 80)]
    band = blurred_fill_band(frames)
    assert band is not None
    assert abs(band.y0 - 88 / SIZE) <= 1 / SIZE and abs(band.y1 - 168 / SIZE) <= 1 / SIZE
    assert (band.x0, band.x1) == (0.0, 1.0)
    # Turned a quarter, the fill is on either side: 4:3 footage on a 16:9 frame.
    sideways = blurred_fill_band([np.ascontiguousarray(f.T) for f in frames])
    assert sideways is not None and abs(sideways.x0 - band.y0) <= 1 / SIZE


def test_blurred_fill_is_found_in_a_part_of_a_frame_that_is_not_square():
    """A side of a split screen is cropped from the square decoded frame; the
    fill's fit magnifies a band to the other side's length, and raised a
    ValueError on such a part (a phone's screen recording of a split layout)."""
    rng = np.random.default_rng(7)
    frames = [_on_blurred_copy(p, sigma=3.0) for p in _footage(rng, 16, 80)]
    part = [cv2.resize(f, (168, SIZE), interpolation=cv2.INTER_AREA) for f in frames]
    band = blurred_fill_band(part)
    assert band is not None
    assert abs(band.y0 - 88 / SIZE) <= 1.5 / SIZE and abs(band.y1 - 168 / SIZE) <= 1.5 / SIZE
    assert content_box(part, 168 / SIZE) == band


def test_a_plain_wall_shaded_towards_the_edges_is_not_fill():
    """A woman before a softly lit wall, cropped and captioned (samples/README.md):
    the wall's shading is also predicted by the picture's middle enlarged and
    blurred, but none of the footage's shapes are, so no band is taken for fill."""
    path = SAMPLES / "plain-wall-meme.mp4"
    info = probe(path)
    frames = [f.pixels for f in extract(path, Settings(), info.duration_s, info.frame_rate)]
    assert len(frames) >= 8
    assert blurred_fill_band(frames) is None


def test_a_ticker_parted_from_the_footage_by_flat_rows_is_left_out_of_its_box():
    """Footage at rows 14-206 of a flat graphic, a ticker's bar from row 215 with
    its text at 226-240: the bar's edge does not bridge the flat rows, and the
    margins above the footage and below the text (14 and 16 rows) do not pass
    for footage centred in fill."""
    rng = np.random.default_rng(7)
    footage, ticker = _footage(rng, 12, 192), _footage(rng, 12, 14)
    frames = []
    for picture, text in zip(footage, ticker):
        frame = np.full((SIZE, SIZE), 60, np.float32)
        frame[14:206] = picture
        frame[215:] = 110
        frame[226:240] = text
        frames.append(frame.astype(np.uint8))
    box = content_box(frames, 16 / 9)
    assert (box.y0, box.y1) == (round(14 / SIZE, 3), round(206 / SIZE, 3)), box


def test_a_border_under_a_ticker_is_closed_where_the_footage_meets_a_plain_wall():
    """Footage framed by a black border of one width all round (in a 4:3
    picture squashed square: 24 rows, 18 columns), a ticker over the bottom
    border, and a plain wall along the footage's right edge: only the line
    where the wall meets the border has detail on that side, and the box still
    closes at the border's width there."""
    rng = np.random.default_rng(7)
    aspect, rows, cols = 4 / 3, 24, 18
    footage, ticker = _footage(rng, 12, SIZE - 2 * rows), _footage(rng, 12, 30)
    frames = []
    for picture, text in zip(footage, ticker):
        frame = np.zeros((SIZE, SIZE), np.float32)
        frame[rows:SIZE - rows, cols:SIZE - cols] = picture[:, cols:SIZE - cols]
        frame[rows:SIZE - rows, 180:SIZE - cols] = 200  # the plain wall
        frame[SIZE - 30:] = text
        frames.append(frame.astype(np.uint8))
    box = content_box(frames, aspect)
    assert abs(box.x1 - (SIZE - cols) / SIZE) <= 1.5 / SIZE, box
    assert abs(box.x0 - cols / SIZE) <= 1.5 / SIZE and abs(box.y0 - rows / SIZE) <= 1.5 / SIZE
    assert abs(box.y1 - (SIZE - rows) / SIZE) <= 1.5 / SIZE, box


def test_a_band_beside_the_footage_is_a_title_only_across_a_solid_gap():
    """The squeezeback: footage shrunk into the right of a solid panel that
    carries a title. At the footage's left edge a door, then a plain wall
    (0.07 of the footage's detail, under the 0.10 that counts as footage), then
    the rest of the office. The title, across the solid panel, is left out of
    the box; the door, across the faint wall only, is footage."""
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(12):
        noise = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE, SIZE)).astype(np.float32), (0, 0), 1)
        picture = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX)
        frame = np.full((SIZE, SIZE), 60, np.float32)  # the panel
        frame[14:206, 104:248] = picture[14:206, 104:248]
        frame[14:206, 131:150] = 64 + rng.normal(0, 0.6, (192, 19))  # the wall
        frame[20:40, 8:32] = picture[20:40, 8:32]  # the title
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    box = content_box(frames, 16 / 9)
    assert abs(box.x0 - 104 / SIZE) <= 1.5 / SIZE, box
    assert abs(box.x1 - 248 / SIZE) <= 1.5 / SIZE, box
