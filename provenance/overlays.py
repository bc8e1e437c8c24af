"""Overlays: static graphics burnt in over footage (captions, meme text, logos,
stickers), found (``overlay_mask``) and filled from the footage around them
(``fill_overlay``)."""
from __future__ import annotations

import cv2
import numpy as np

# Captions, meme text, logos and stickers are burnt in over the footage and do
# not move while it does. Found from the temporal spread of each pixel over a
# query's first frames; then filled from the footage around them so the frame
# hashes like the original again. Measured on the overlay family of
# bench/accuracy (frame level): frames within the match radius 14 % -> 65 %, no
# look-alike frame newly within it; the mask stays empty on 17 of 25 plain
# re-encodes and under 1 % on most others (one real watermark: 7 %).
OVERLAY_FRAMES = 64
STATIC_SPREAD = 2.0  # grey levels
STATIC_SPREAD_OF_MOTION = 0.25  # of the median pixel's spread: half-transparent boxes too
STATIC_CAMERA = 0.5  # share of static pixels above which the camera itself is still
EDGE_MOVING = 200.0  # Sobel magnitude of overlay edges on moving footage
EDGE_STATIC = 600.0  # rendered text and box edges (bordered text ~1000)
MAX_BLOB = 0.15
MAX_OVERLAY = 0.35  # a larger "overlay" is the footage itself
_K3 = np.ones((3, 3), np.uint8)


def overlay_mask(frames: list[np.ndarray]) -> np.ndarray | None:
    """Pixels of static graphics over moving footage, or None when there are none."""
    if len(frames) < 4:
        return None
    picked = np.linspace(0, len(frames) - 1, min(len(frames), OVERLAY_FRAMES)).round().astype(int)
    stack = np.stack([frames[i] for i in picked]).astype(np.float32)
    spread = stack.std(axis=0)
    median = np.median(stack, axis=0)
    static = spread < max(STATIC_SPREAD, STATIC_SPREAD_OF_MOTION * float(np.median(spread)))
    edges = np.hypot(cv2.Sobel(median, cv2.CV_32F, 1, 0), cv2.Sobel(median, cv2.CV_32F, 0, 1))
    bars = _dark_bars(median)
    if static.mean() <= STATIC_CAMERA:
        # Moving footage: a static patch with sharp edges is a graphic.
        seeds = static & (edges > EDGE_MOVING) & ~bars
        patches = cv2.morphologyEx((static & ~bars).astype(np.uint8), cv2.MORPH_CLOSE, _K3)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(patches, connectivity=8)
        seeded = np.bincount(labels[seeds], minlength=count)
        keep = (seeded >= 3) & (stats[:, cv2.CC_STAT_AREA] >= 20)
        keep[0] = False
        mask = cv2.dilate(keep[labels].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    else:
        mask = _graphics_on_still_footage(static, edges, bars)
    if not mask.any() or mask.mean() > MAX_OVERLAY:
        return None
    return mask


def _graphics_on_still_footage(static, edges, bars) -> np.ndarray:
    """Static camera: everything is static; only rendered edges and the flat
    blobs they enclose (box and sticker interiors) count."""
    h, w = static.shape
    strong = static & (edges > EDGE_STATIC) & ~bars
    near = cv2.dilate(strong.astype(np.uint8), _K3) > 0
    inside = (static & ~near & ~bars).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    keep = np.zeros(count, bool)
    border = np.zeros((h, w), bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    for i in range(1, count):
        area = stats[i, cv2.CC_STAT_AREA]
        if area < 6 or area > MAX_BLOB * h * w:
            continue
        x0, y0, bw, bh = stats[i, :4]
        window = (slice(max(0, y0 - 2), y0 + bh + 2), slice(max(0, x0 - 2), x0 + bw + 2))
        blob = (labels[window] == i).astype(np.uint8)
        ring = (cv2.dilate(blob, _K3, iterations=2) > 0) & (blob == 0) & ~border[window]
        keep[i] = bool(ring.any()) and near[window][ring].mean() >= 0.5
    mask = cv2.morphologyEx(((near & static) | keep[labels]).astype(np.uint8), cv2.MORPH_CLOSE, _K3)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= 15
    big[0] = False
    return cv2.dilate(big[labels].astype(np.uint8), _K3) > 0


def _dark_bars(median: np.ndarray, darkest: float = 24) -> np.ndarray:
    """Letterbox and pillarbox bars: static and edged, but never an overlay."""
    bars = np.zeros(median.shape, bool)
    for dark, axis in ((median.max(axis=1) < darkest, 0), (median.max(axis=0) < darkest, 1)):
        start, end = 0, len(dark)
        while start < end and dark[start]:
            start += 1
        while end > start and dark[end - 1]:
            end -= 1
        if axis == 0:
            bars[:start], bars[end:] = True, True
        else:
            bars[:, :start], bars[:, end:] = True, True
    return bars


def fill_overlay(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The masked pixels filled from around them: the mean of OpenCV's Telea
    inpainting and a smooth pyramid fill (better together than either alone)."""
    if not mask.any():
        return frame
    telea = cv2.inpaint(frame, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    return ((telea.astype(np.uint16) + _pyramid_fill(frame, mask)) // 2).astype(np.uint8)


def _pyramid_fill(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Push-pull: normalised convolution down a Gaussian pyramid, then back up."""
    image = frame.astype(np.float32)
    weight = (~mask).astype(np.float32)
    levels = []
    values, weights = image * weight, weight
    while min(values.shape) > 4:
        levels.append((values, weights))
        values, weights = cv2.pyrDown(values), cv2.pyrDown(weights)
    estimate = values / np.maximum(weights, 1e-6)
    estimate[weights < 1e-6] = (image * weight).sum() / max(weight.sum(), 1.0)
    for values, weights in reversed(levels):
        up = cv2.resize(estimate, (values.shape[1], values.shape[0]), interpolation=cv2.INTER_LINEAR)
        here = np.where(weights > 1e-3, values / np.maximum(weights, 1e-6), up)
        confidence = np.clip(weights * 4, 0, 1)
        estimate = confidence * here + (1 - confidence) * up
    out = frame.copy()
    out[mask] = np.clip(estimate[mask], 0, 255).astype(np.uint8)
    return out
