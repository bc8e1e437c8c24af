"""Rotation: a picture turned a few degrees inside its own frame, found from the
flat wedges left in its corners (``rotation_of``) and turned back (``unrotate``)."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from .keyframes import FRAME_SIZE
from .overlays import OVERLAY_FRAMES, fill_overlay
from .views import Box, Rotation

# A repost turned a few degrees inside its own frame loses its corners to flat
# fill (black, mostly): four wedges whose shape gives the angle to a tenth of a
# degree. PDQ forgives about half a degree (5 degrees cost ~90 bits, turned
# back to within 0.1 degree and the corners filled in, ~8).
MIN_TURN_DEG = 1.0
MAX_TURN_DEG = 20.0
MIN_WEDGE_IOU = 0.8
FILL_TOLERANCE = 8  # grey levels around the corners' own value
TURN_FRAME = 256  # the longer side of the true-shape canvas the turn is done on
WEDGE_DETAIL = 1024  # ...and of the one the wedges' shape is drawn on
# Footage inside bars (a pillarboxed film, a bordered clip) turned in its frame
# leaves no wedges of its own: its cut corners run into the bars. Its footage is
# then a rectangle turned, the frame's edges clipping it; the turn that sets it
# upright to MIN_FOOTAGE_IOU of a centred box is taken.
MIN_FOOTAGE_IOU = 0.9
FOOTAGE_CANVAS = 512
CENTRED = 0.03  # bars frame footage evenly: the box's sides this close
# ...and are this wide at least on one axis. Footage that fills its frame fits a
# centred box at any turn (rounded or vignetted corners are flat, the rest is
# footage), so the fit tells nothing there: such a picture took a turn of 20.5
# degrees.
MIN_BARS = 0.03


def rotation_of(frames: list[np.ndarray], aspect: float) -> Rotation | None:
    """The turn whose cut-off corners match the flat, still wedges in the
    frames' corners; None when the corners hold footage."""
    if len(frames) < 2 or not 0.2 <= aspect <= 5:
        return None
    stack = np.stack(frames[:OVERLAY_FRAMES]).astype(np.int16)
    first = stack[0]
    fill = float(np.median([first[0, 0], first[0, -1], first[-1, 0], first[-1, -1]]))
    wedges = (np.abs(stack - fill) <= FILL_TOLERANCE).all(axis=0)
    if not all(wedges[y, x] for y in (0, -1) for x in (0, -1)):
        return None
    # Compression rings along the wedges' edges, so the flat pixels stop short of
    # the true edge and the same mask grown a pixel overshoots it: the angles
    # fitted to each fall ~0.3 degree either side, and their mean is taken.
    grown = cv2.dilate(wedges.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    masks = (wedges, grown)
    return _turned_frame(masks, aspect) or _turned_footage(masks, aspect)


def _turned_frame(masks: tuple[np.ndarray, ...], aspect: float) -> Rotation | None:
    """The whole frame's picture turned: four wedges of fill in the corners."""
    fits = [_fit_turn(mask, aspect) for mask in masks]
    if any(f is None for f in fits):
        return None
    return Rotation(round(float(np.mean(fits)), 2), round(aspect, 4))


def _turned_footage(masks: tuple[np.ndarray, ...], aspect: float) -> Rotation | None:
    """Footage inside bars turned with them: the turn that sets the footage
    upright as a centred box, and that box."""
    fits = [_fit_footage(mask, aspect) for mask in masks]
    if any(f is None for f in fits):
        return None
    degrees = round(float(np.mean([f[0] for f in fits])), 2)
    x0, y0 = (round(float(np.mean([f[1][i] for f in fits])), 4) for i in (0, 1))
    return Rotation(degrees, round(aspect, 4), Box(x0, y0, 1 - x0, 1 - y0))


def _fit_footage(flat: np.ndarray, aspect: float) -> tuple[float, tuple[float, float]] | None:
    # The turn is sought on a small canvas, then refined on a larger one.
    small, large = (_footage_canvas(flat, aspect, side)
                    for side in (FOOTAGE_CANVAS // 4, FOOTAGE_CANVAS))
    coarse = np.arange(-MAX_TURN_DEG, MAX_TURN_DEG + 0.01, 0.5)
    best = max(coarse, key=lambda d: _upright(small, d)[0])
    fine = np.arange(max(best - 0.5, -MAX_TURN_DEG), min(best + 0.5, MAX_TURN_DEG) + 0.01, 0.05)
    best = max(fine, key=lambda d: _upright(large, d)[0])
    iou, margins = _upright(large, best)
    if abs(best) < MIN_TURN_DEG or iou < MIN_FOOTAGE_IOU or max(margins) < MIN_BARS:
        return None
    return float(best), margins


def _footage_canvas(flat: np.ndarray, aspect: float, side: int) -> np.ndarray:
    """The pixels not flat, on a true-shape canvas of longer side ``side``."""
    w, h = _canvas(aspect, side)
    return (cv2.resize((~flat).astype(np.uint8) * 255, (w, h),
                       interpolation=cv2.INTER_LINEAR) >= 128).astype(np.uint8)


def _upright(footage: np.ndarray, degrees: float) -> tuple[float, tuple[float, float]]:
    """How well the footage turned back ``degrees`` fills a centred box (IoU,
    0 if no centred box), and the box's margins (left/right, top/bottom)."""
    h, w = footage.shape
    frame = np.ones_like(footage)
    back = _turn(footage, -degrees, cv2.INTER_NEAREST).astype(bool)
    seen = _turn(frame, -degrees, cv2.INTER_NEAREST).astype(bool)
    # The box: the columns and rows mostly footage where the frame was.
    cols = back.sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
    rows = back.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
    xs, ys = np.flatnonzero(cols > 0.5), np.flatnonzero(rows > 0.5)
    if not len(xs) or not len(ys):
        return 0.0, (0.5, 0.5)
    box = np.zeros_like(back)
    box[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] = True
    box &= seen
    iou = float((box & back).sum() / max((box | back).sum(), 1))
    edges = (xs[0] / w, 1 - (xs[-1] + 1) / w, ys[0] / h, 1 - (ys[-1] + 1) / h)
    if abs(edges[0] - edges[1]) > CENTRED or abs(edges[2] - edges[3]) > CENTRED:
        return 0.0, (0.5, 0.5)
    return iou, ((edges[0] + edges[1]) / 2, (edges[2] + edges[3]) / 2)


def _fit_turn(wedges: np.ndarray, aspect: float) -> float | None:
    def overlap(degrees: float) -> float:
        cut = _cut_corners(round(float(degrees), 2), round(aspect, 4))
        return float((cut & wedges).sum() / max((cut | wedges).sum(), 1))

    coarse = [d for d in np.arange(-MAX_TURN_DEG, MAX_TURN_DEG + 0.01, 0.5)
              if abs(d) >= MIN_TURN_DEG]
    best = max(coarse, key=overlap)
    best = max(np.arange(best - 0.5, best + 0.51, 0.05), key=overlap)
    if abs(best) < MIN_TURN_DEG or overlap(best) < MIN_WEDGE_IOU:
        return None
    return float(best)


def _canvas(aspect: float, side: int = TURN_FRAME) -> tuple[int, int]:
    return (side, max(2, round(side / aspect))) if aspect >= 1 else \
        (max(2, round(side * aspect)), side)


def _turn(image: np.ndarray, degrees: float, interpolation: int) -> np.ndarray:
    """``image`` turned ``degrees`` clockwise about its centre, same size."""
    h, w = image.shape
    # OpenCV's positive angles turn counter-clockwise on screen.
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=interpolation, borderValue=0)


@functools.cache
def _cut_corners(degrees: float, aspect: float) -> np.ndarray:
    """Square-frame mask of the pixels a turn of ``degrees`` leaves wholly without
    footage. Wholly: pixels the wedge's edge crosses blend fill and footage and
    are not counted as fill in the frames either (counting them biased the
    angle half a degree low)."""
    w, h = _canvas(aspect, WEDGE_DETAIL)
    kept = _turn(np.full((h, w), 255, np.uint8), degrees, cv2.INTER_NEAREST)
    coverage = cv2.resize(kept, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)
    return coverage <= 8


@functools.cache
def _lost_corners(degrees: float, aspect: float) -> np.ndarray:
    """Square-frame mask of the original's corners that a turn there and back
    cannot bring back, grown a pixel to cover the blended edge."""
    w, h = _canvas(aspect)
    ones = np.full((h, w), 255, np.uint8)
    back = _turn(_turn(ones, degrees, cv2.INTER_LINEAR), -degrees, cv2.INTER_LINEAR)
    square = cv2.resize(back, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_LINEAR) < 250
    return cv2.dilate(square.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def unrotate(frame: np.ndarray, rotation: Rotation) -> np.ndarray:
    """The frame turned back to upright, its lost corners filled from around them."""
    w, h = _canvas(rotation.aspect)
    true_shape = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    upright = _turn(true_shape, -rotation.degrees, cv2.INTER_LINEAR)
    square = cv2.resize(upright, frame.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return fill_overlay(square, _lost_corners(rotation.degrees, rotation.aspect))
