"""Views of a keyframe: the parts of the picture that are hashed.

Reposts wrap footage in letterbox bars, coloured borders or a blurred,
enlarged copy of itself (the 9:16 "TikTok" repost). ``content_box`` finds the
footage inside such padding from a video's frames: rows and columns at the
edges whose fine detail, averaged over time, is a small fraction of the
picture's.
The box is a property of the content, so an original and its padded repost
crop to the same footage. Both sides hash the ``content`` view; queries also
try the uncropped frame and the mirror images of both.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HASH_SIZE = 128
# A side counts as padding when its fine detail (mean |Laplacian| over time)
# is under this fraction of the picture's: black bars and borders measure 0,
# blurred fill 0.06-0.09, the flattest footage seen (out-of-focus bokeh) 0.13.
PADDING_DETAIL_RATIO = 0.10
MIN_PADDING = 0.03  # ignore slivers: encoders leave a few dark rows
MIN_CONTENT = 0.2
BOX_FRAMES = 120  # frames (30 s at the index rate) that decide the box


@dataclass(frozen=True)
class Box:
    """A rectangle as fractions of the frame: left, top, right, bottom."""

    x0: float = 0.0
    y0: float = 0.0
    x1: float = 1.0
    y1: float = 1.0

    @property
    def is_full(self) -> bool:
        return (self.x0, self.y0, self.x1, self.y1) == (0.0, 0.0, 1.0, 1.0)

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def crop(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape
        return frame[round(self.y0 * h):round(self.y1 * h), round(self.x0 * w):round(self.x1 * w)]


FULL = Box()


@dataclass(frozen=True)
class View:
    name: str
    box: Box
    mirrored: bool


def render(frame: np.ndarray, view: View) -> np.ndarray:
    """The pixels a view hashes: cropped, flipped if asked, resized to HASH_SIZE."""
    part = view.box.crop(frame)
    if view.mirrored:
        part = part[:, ::-1]
    return cv2.resize(np.ascontiguousarray(part), (HASH_SIZE, HASH_SIZE),
                      interpolation=cv2.INTER_AREA)


def content_box(frames: list[np.ndarray]) -> Box:
    """The footage inside letterbox bars, borders or blurred fill; FULL if none."""
    if not frames:
        return FULL
    # Second derivatives: blur removes them far more than it removes gradients.
    detail = np.mean([np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F, ksize=1))
                      for f in frames[:BOX_FRAMES]], axis=0)
    top, bottom = _content_span(detail.mean(axis=1))
    left, right = _content_span(detail.mean(axis=0))
    box = Box(left, top, right, bottom)
    if box.x1 - box.x0 < MIN_CONTENT or box.y1 - box.y0 < MIN_CONTENT:
        return FULL
    return box


def _content_span(detail: np.ndarray) -> tuple[float, float]:
    n = len(detail)
    reference = float(np.percentile(detail, 90))
    if reference <= 0:
        return 0.0, 1.0
    rich = np.flatnonzero(detail >= PADDING_DETAIL_RATIO * reference)
    start, end = (rich[0], rich[-1] + 1) if len(rich) else (0, n)
    # The Laplacian also fires on the padding line touching the footage.
    start, end = (start + 1 if start else 0), (end - 1 if end < n else n)
    start_f, end_f = start / n, end / n
    # Snap small margins to the edge so that encoder noise never changes a box.
    start_f = 0.0 if start_f < MIN_PADDING else round(start_f, 3)
    end_f = 1.0 if end_f > 1 - MIN_PADDING else round(end_f, 3)
    return start_f, end_f


def query_views(box: Box) -> list[View]:
    views = [View("content", box, False), View("content-mirrored", box, True)]
    if not box.is_full:
        views += [View("full", FULL, False), View("full-mirrored", FULL, True)]
    return views
