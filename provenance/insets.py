"""Insets: footage shown small on, or side by side with, other footage, or played
in an app or a web page and screen-recorded, proposed as rectangles closed by
straight seams (or by seams symmetric about the centre), both sides of a seam
across the whole picture, the halves of a picture too wide or too tall to be one,
and the one moving picture in a drawn one (``region_proposals``)."""
from __future__ import annotations

import cv2
import numpy as np

from .padding import content_box, longest_run
from .views import BOX_FRAMES, FULL, SAME_BOX, Box

# Picture-in-picture, split screens and footage shown small on other footage
# put two unrelated pictures side by side. Along the seam, neighbouring pixels
# stop changing together over time, however alike they look: a straight,
# axis-aligned line of temporal decorrelation (see _seams for still footage).
# Rectangles closed by such lines (or by the picture's own border) are proposed
# as query views. Measured on bench/accuracy's 75 composites, boxes within 0.9
# IoU of the truth: 19 from decorrelation alone, 34 adding the still-moving
# step, 60 adding the still step (a signer in an office, still, shown on a
# product shot, also still).
SEAM_DECORRELATION = 0.3  # 1 - correlation of neighbouring pixels over time
SEAM_CONTRAST = 0.2  # ... and this much above the rows two away on either side
STATIC_STD = 2.0  # grey levels: pixels under this spread never change
MOVING_STD = 6.0  # ...and over this one clearly do
# Where neither side moves (a still inset on a still picture: one signer in one
# office shown on a product shot), the seam is a step in the median frame of
# this many grey levels, twice the steps two rows away.
STILL_STEP = 12.0
STILL_STEP_RATIO = 2.0
MIN_LINE = 0.15  # of the frame's side
MAX_LINES = 12
MIN_SIDE_SUPPORT = 0.4  # every side: seams break where both pictures move alike
MIN_MEAN_SUPPORT = 0.6
MAX_PROPOSALS = 3
# No camera or cinema format is this wide (cinemascope is 2.39:1), nor this
# tall: such a picture is two side by side (or one above the other), and its
# halves are proposed whatever the seams show. Seams miss a split screen where
# the two pictures move alike or a dark edge passes for padding: 8 of
# bench/accuracy's 25 side-by-side copies were missed so.
SPLIT_ASPECT = 2.6
# Under this margin a centred box is about the whole picture, which is tried anyway.
MIN_CENTRED_MARGIN = 0.08
# A split screen of ordinary shape (two 16:9 clips stacked in a 9:16 frame, the
# reaction and duet layouts; two 9:16 clips side by side in 16:9) is cut by one
# seam across the whole footage. Boxes closed by the picture's border rank below
# any box with seams on three or four sides, so both sides of such a seam are
# proposed first, each inside its own bars if it has any. A caption bar, a
# ticker or a logo strip is narrower than MIN_SPLIT_SHARE. On bench/accuracy's
# 25 references, such a seam was found on one (a still signer's dark shirt).
SPLIT_SUPPORT = 0.85
# A seam that cuts off a side of a camera's shape (within SHAPE_TOLERANCE) is a
# layout's more likely than a chance line: the reaction layout stacks a 16:9 or
# 4:3 clip over other footage. Such a seam needs less support (a still signer in
# a 4:3 office stacked over a product shot: 0.77 along its seam).
CAMERA_SHAPES = (16 / 9, 4 / 3, 3 / 2, 1.0, 3 / 4, 9 / 16)
SHAPE_TOLERANCE = 0.02
SHAPED_SPLIT_SUPPORT = 0.7
MIN_SPLIT_SHARE = 0.3
# A screen recording plays the footage in an app or a web page, whose buttons,
# captions, status bar and page are drawn, not filmed. The footage is the one
# picture that moves: the smallest box between seam lines around nearly all that
# moves (a pointer or a progress bar may move outside it) is proposed first, and
# on top of the MAX_PROPOSALS insets.
# A still camera's footage moves only in part (a signer in an office), so a box
# also needs dead pixels just beyond each of its sides: drawn graphics never
# change at all, while filmed ones flicker a little even when still (a signer's
# office: a fifth of its pixels spread over 0.5 grey levels in 10 frames; the
# app's bars and buttons, none).
MOVING_OUTSIDE = 0.03  # of the moving pixels
MIN_MOVING = 0.01  # of the picture: less is a still picture
LIVE_SPREAD = 0.5  # grey levels over the opening frames
# Pixels beyond a side (and within it) that are judged: the first two share the
# footage's pixels in the scaling and flicker with it. Blocks of the encoding
# reach further on small sources (a still picture below an inset from a 480-row
# source: live up to 3 pixels beyond it), and such a box is then not found: the
# insets closed by seams are still proposed after it.
DEAD_BAND = (2, 5)
# A side is taken where the share of live pixels beyond it is at most
# MAX_LIVE_BEYOND and half of that within it. Where a box cuts through a still
# camera's footage (a signer's office, beside an app's buttons), 12-32 % beyond.
MAX_LIVE_BEYOND = 0.1
LIVE_DROP = 0.5
BORDER_LINE = 3  # pixels (1 %): a line this close to the picture's border is the border's

SPLIT_PADDING_FRAMES = 60  # the frames each side's own padding is judged on
CENTRED_BARS = 0.01  # of the picture: bars this close to one width are centred
DARK_BARS = 40.0  # grey level: bars are black, or near it after encoding


def region_proposals(frames: list[np.ndarray], aspect: float | None = None,
                     footage: Box = FULL) -> list[Box]:
    """Up to MAX_PROPOSALS insets, best first, of pictures whose displayed
    width / height is ``aspect`` (the frames themselves are square) and whose
    footage lies in ``footage`` (inside any padding); before them, the one
    moving picture in a drawn one, if there is one."""
    chosen = _halves(aspect, footage)
    if len(frames) < 6:
        return chosen
    stack = np.stack(frames[:BOX_FRAMES]).astype(np.float32)
    spread = stack.std(axis=0)
    seams_h, seams_v = _seams(stack, spread)
    h, w = seams_h.shape
    rows = sorted(set(_refined(seams_h, _lines(seams_h)) + [0, h - 1]))
    cols = sorted(set(_refined(seams_v.T, _lines(seams_v.T)) + [0, w - 1]))
    sides = [_footage_in(frames, side, aspect)
             for side in _split(seams_h, seams_v, rows, cols, footage, aspect)]
    for box in sides + [_centred(rows, cols, h, w)]:
        if (box is not None and len(chosen) < MAX_PROPOSALS
                and all(_overlap(box, other) < 0.8 for other in chosen)):
            chosen.append(box)
    found = []
    for i, top in enumerate(rows):
        for bottom in rows[i + 1:]:
            for j, left in enumerate(cols):
                for right in cols[j + 1:]:
                    box = _closed_box(seams_h, seams_v, top, bottom, left, right, aspect)
                    if box is not None:
                        found.append(box)
    found.sort(key=lambda item: -item[0])
    for _, box in found:
        if len(chosen) >= MAX_PROPOSALS:
            break
        if all(_overlap(box, other) < 0.8 for other in chosen):
            chosen.append(box)
    # Proposed first and beyond MAX_PROPOSALS, pushing no inset out: a side of
    # it whose dead pixels begin further out (encoding blocks of a small source)
    # takes the box to the next line, and the inset closed by seams is kept.
    screen = _moving_picture(rows, cols, spread, footage, aspect)
    if screen is not None and screen not in chosen:
        chosen.insert(0, screen)
    return chosen


def _moving_picture(rows: list[int], cols: list[int], spread: np.ndarray, footage: Box,
                   aspect: float | None) -> Box | None:
    """The one moving picture in a drawn one: footage played in an app or a web
    page and screen-recorded. The smallest box between seam lines that holds all
    but MOVING_OUTSIDE of the moving pixels and has dead pixels beyond each side
    that is not the picture's border (the seams themselves are not asked for: a
    still camera's footage meets a black bar with hardly a step where it is
    dark); None when that is the footage's box already, or there is none."""
    h, w = spread.shape
    moving = cv2.integral((spread > MOVING_STD).astype(np.uint8))
    live = cv2.integral((spread > LIVE_SPREAD).astype(np.uint8))
    total = int(moving[h, w])
    if total < MIN_MOVING * h * w:
        return None

    def count(table: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int]:
        """(pixels set, pixels) in the rows and columns given, clipped to the picture."""
        y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        if y1 <= y0 or x1 <= x0:
            return 0, 0
        return int(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]), \
            (y1 - y0) * (x1 - x0)

    def dead_beyond(side: str, y0: int, y1: int, x0: int, x1: int) -> bool:
        """Whether the pixels DEAD_BAND beyond one side are dead, and at most half
        as live as those as far within it."""
        def band(a: int, b: int) -> tuple[int, int, int, int]:
            """Rows and columns a to b pixels beyond the side (inside it if negative)."""
            return {"top": (y0 - b, y0 - a, x0, x1), "bottom": (y1 + a, y1 + b, x0, x1),
                    "left": (y0, y1, x0 - b, x0 - a), "right": (y0, y1, x1 + a, x1 + b)}[side]

        near, far = DEAD_BAND
        out, out_area = count(live, *band(near, far))
        inn, inn_area = count(live, *band(-far, -near))
        return out_area > 0 and out / out_area <= min(MAX_LIVE_BEYOND, LIVE_DROP * inn / inn_area)

    best: Box | None = None
    edges_y = [0] + [r + 1 for r in rows if BORDER_LINE < r + 1 < h - BORDER_LINE] + [h]
    edges_x = [0] + [c + 1 for c in cols if BORDER_LINE < c + 1 < w - BORDER_LINE] + [w]
    for i, y0 in enumerate(edges_y):
        for y1 in edges_y[i + 1:]:
            for j, x0 in enumerate(edges_x):
                for x1 in edges_x[j + 1:]:
                    box = Box(x0 / w, y0 / h, x1 / w, y1 / h)
                    if (not _plausible(box, aspect) or (best is not None and box.area >= best.area)
                            or count(moving, y0, y1, x0, x1)[0] < (1 - MOVING_OUTSIDE) * total):
                        continue
                    inner = {"top": y0 > 0, "bottom": y1 < h, "left": x0 > 0, "right": x1 < w}
                    if all(dead_beyond(side, y0, y1, x0, x1) for side, is_inner in inner.items()
                           if is_inner):
                        best = box
    if best is None or all(abs(a - b) <= SAME_BOX for a, b in zip(
            (best.x0, best.y0, best.x1, best.y1),
            (footage.x0, footage.y0, footage.x1, footage.y1))):
        return None
    return best


def _halves(aspect: float | None, footage: Box) -> list[Box]:
    """The halves of the picture when it is too wide or too tall to be one, else
    of the footage inside its padding (a split screen letterboxed into 16:9).
    The picture comes first: a dark edge of one half can pass for padding."""
    if not aspect:
        return []
    for box in (FULL, footage):
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
        shape = box.shape(aspect)
        if shape >= SPLIT_ASPECT:
            middle = (x0 + x1) / 2
            return [Box(x0, y0, middle, y1), Box(middle, y0, x1, y1)]
        if shape <= 1 / SPLIT_ASPECT:
            middle = (y0 + y1) / 2
            return [Box(x0, y0, x1, middle), Box(x0, middle, x1, y1)]
    return []


def _split(seams_h: np.ndarray, seams_v: np.ndarray, rows: list[int], cols: list[int],
           footage: Box, aspect: float | None = None) -> list[Box]:
    """Both sides of the best-supported seam that runs across the whole footage
    and leaves at least MIN_SPLIT_SHARE of it on either side. Each side ends
    where the footage does if a seam closes it there, else at the picture's
    border: a flat edge of one side can pass for padding."""
    h, w = seams_h.shape
    best: tuple[float, Box, Box] | None = None
    for across, strong, lines, size, (start, end), (near, far) in (
            (True, seams_h, rows, h, (footage.x0, footage.x1), (footage.y0, footage.y1)),
            (False, seams_v.T, cols, w, (footage.y0, footage.y1), (footage.x0, footage.x1))):
        length = strong.shape[1]
        for line in lines:
            edge = (line + 1) / size
            share = (edge - near) / (far - near)
            if not MIN_SPLIT_SHARE <= share <= 1 - MIN_SPLIT_SHARE:
                continue
            support = _side_support(strong, line, round(start * length),
                                    round(end * length) - 1)
            if support < SHAPED_SPLIT_SUPPORT or (best is not None and support <= best[0]):
                continue
            first = near if _closed_at(near, lines, size) else 0.0
            last = far if _closed_at(far, lines, size) else 1.0
            sides = [Box(start, first, end, edge), Box(start, edge, end, last)] if across \
                else [Box(first, start, edge, end), Box(edge, start, last, end)]
            if support >= SPLIT_SUPPORT or any(_camera_shaped(side, aspect) for side in sides):
                best = (support, *sides)
    return list(best[1:]) if best else []


def _camera_shaped(box: Box, aspect: float | None) -> bool:
    return bool(aspect) and any(abs(box.shape(aspect) / shape - 1) <= SHAPE_TOLERANCE
                                for shape in CAMERA_SHAPES)


def _footage_in(frames: list[np.ndarray], side: Box, aspect: float | None) -> Box:
    """The footage inside one side of a split screen, within its own bars (a
    vertical clip pillarboxed in the top half of a 9:16 reaction). Only dark
    bars of one width on either side count: layouts centre what they pad, in
    black, and the flat ground of the footage itself (a cartoon's white) would
    otherwise pass for bars."""
    width, height = side.x1 - side.x0, side.y1 - side.y0
    shape = side.shape(aspect) if aspect else None
    parts = [side.crop(frame) for frame in frames[:SPLIT_PADDING_FRAMES]]
    inner = content_box(parts, shape)
    mean = np.mean(parts, axis=0)
    h, w = mean.shape
    x0, x1, y0, y1 = (round(inner.x0 * w), round(inner.x1 * w), round(inner.y0 * h),
                      round(inner.y1 * h))
    bars_x = np.concatenate([mean[:, :x0].ravel(), mean[:, x1:].ravel()])
    bars_y = np.concatenate([mean[:y0].ravel(), mean[y1:].ravel()])
    if (abs(inner.x0 - (1 - inner.x1)) * width > CENTRED_BARS
            or (bars_x.size and bars_x.mean() > DARK_BARS)):
        inner = Box(0.0, inner.y0, 1.0, inner.y1)
    if (abs(inner.y0 - (1 - inner.y1)) * height > CENTRED_BARS
            or (bars_y.size and bars_y.mean() > DARK_BARS)):
        inner = Box(inner.x0, 0.0, inner.x1, 1.0)
    return Box(side.x0 + inner.x0 * width, side.y0 + inner.y0 * height,
               side.x0 + inner.x1 * width, side.y0 + inner.y1 * height)


def _closed_at(edge: float, lines: list[int], size: int) -> bool:
    """Whether ``edge`` (a fraction) is the picture's border or a seam line's."""
    return edge in (0.0, 1.0) or any(abs((line + 1) / size - edge) <= 2 / size for line in lines)


def _centred(rows: list[int], cols: list[int], h: int, w: int) -> Box | None:
    """The box closed by seams symmetric about the centre on one axis and a seam
    at the same margin on the other: footage shown centred and smaller, its
    shape kept, on other footage. The seams' own support along the box's sides
    is not asked for: where the two pictures happen to move alike a side fades
    (3 of bench/accuracy's 25 centred insets had their four lines and no box,
    and one more had three of them)."""
    def edges(lines: list[int], size: int) -> list[float]:
        return [(line + 1) / size for line in lines if 0 < line < size - 1]

    def margins(found: list[float], size: int) -> list[float]:
        return [(a + 1 - b) / 2 for a in found for b in found
                if MIN_CENTRED_MARGIN <= a and b <= 1 - MIN_CENTRED_MARGIN and
                a < 0.5 < b and abs(a - (1 - b)) <= 1.5 / size]

    tolerance = 1.5 / min(h, w)
    across, down = edges(cols, w), edges(rows, h)
    candidates = [(abs(min(edge, 1 - edge) - m), m)
                  for symmetric, other, size in ((across, down, w), (down, across, h))
                  for m in margins(symmetric, size) for edge in other]
    fits = [c for c in candidates if c[0] <= tolerance]
    if not fits:
        return None
    margin = min(fits)[1]
    return Box(margin, margin, 1 - margin, 1 - margin)


def _seams(stack: np.ndarray, spread: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of pixels where the picture below (first) or to the right (second)
    is another picture: it changes independently over time, or one side moves
    and the other never does, or, where neither moves, a sharp step stands
    still between them. ``spread``: each pixel's standard deviation over the
    stack, if the caller has it already."""
    centred = stack - stack.mean(axis=0)
    if spread is None:
        spread = centred.std(axis=0)
    live, moving = spread > STATIC_STD, spread > MOVING_STD
    z = centred / np.maximum(spread, 1e-3)
    median = np.median(stack, axis=0)
    masks = []
    for axis in (0, 1):
        # Computed along rows; columns are rows of the transposed picture.
        zt = z if axis == 0 else z.transpose(0, 2, 1)
        lv, mv, md = (a if axis == 0 else a.T for a in (live, moving, median))
        both_live, both_still = lv[1:] & lv[:-1], ~mv[1:] & ~mv[:-1]
        # Footage from a still camera shown on moving footage (or the reverse):
        # nothing correlates with what never changes, so the step from still to
        # moving marks the seam instead.
        one_still = (mv[1:] & ~lv[:-1]) | (mv[:-1] & ~lv[1:])
        decorrelated = _stands_out(1 - (zt[:, 1:, :] * zt[:, :-1, :]).mean(axis=0),
                                   SEAM_DECORRELATION, SEAM_CONTRAST, 1.0)
        step = _stands_out(np.abs(md[1:] - md[:-1]), STILL_STEP, 0.0, STILL_STEP_RATIO)
        mask = np.zeros(lv.shape, bool)
        mask[:-1] = (decorrelated & both_live) | one_still | (step & both_still)
        masks.append(mask if axis == 0 else mask.T)
    return masks[0], masks[1]


def _stands_out(values: np.ndarray, level: float, margin: float, ratio: float) -> np.ndarray:
    """Where a row's values exceed ``level`` and the rows two away on either side
    by ``margin`` and ``ratio`` times: a seam is a line, texture is not. (Scaling
    blends the two pictures along a seam, which leaves the seam itself only
    partly decorrelated: 0.4-0.5 on a 35 % inset.)"""
    padded = np.pad(values, [(2, 2), (0, 0)], mode="edge")
    around = np.maximum(padded[:-4], padded[4:])
    return (values > level) & (values > ratio * around + margin)


def _lines(strong: np.ndarray) -> list[int]:
    """Rows holding a long straight run of seam pixels, longest first."""
    h, w = strong.shape
    # A seam wanders by a row and breaks where both pictures happen to change
    # together: merge neighbouring rows and close short gaps.
    band = strong | np.roll(strong, 1, axis=0)
    closed = cv2.morphologyEx(band.astype(np.uint8), cv2.MORPH_CLOSE,
                              np.ones((1, 9), np.uint8)).astype(bool)
    runs = []
    for row in range(2, h - 2):
        longest = longest_run(closed[row])
        if longest >= MIN_LINE * w:
            runs.append((longest, row))
    runs.sort(reverse=True)
    picked: list[int] = []
    for _, row in runs:
        if all(abs(row - other) > 2 for other in picked):
            picked.append(row)
        if len(picked) == MAX_LINES:
            break
    return picked


def _refined(strong: np.ndarray, lines: list[int]) -> list[int]:
    """Each line moved to the neighbouring row with the most seam pixels: lines are
    found on rows merged in pairs, and a box one pixel off costs ~30 bits."""
    out = []
    for row in lines:
        candidates = [r for r in (row - 1, row, row + 1) if 0 < r < strong.shape[0] - 1]
        out.append(max(candidates, key=lambda r: (int(strong[r].sum()), r == row)))
    return out


def _side_support(strong: np.ndarray, at: int, start: int, end: int) -> float:
    if at <= 0 or at >= strong.shape[0] - 1:
        return 1.0  # the picture's own border closes the box
    band = strong[max(at - 1, 0):at + 2, start:end + 1].any(axis=0)
    band = cv2.morphologyEx(band.astype(np.uint8)[None, :], cv2.MORPH_CLOSE,
                            np.ones((1, 9), np.uint8))[0]
    return float(band.mean()) if band.size else 0.0


def _closed_box(strong_h, strong_v, top, bottom, left, right, picture_aspect: float | None
                ) -> tuple[float, Box] | None:
    h, w = strong_h.shape
    # A seam at row r lies between rows r and r + 1.
    box = Box((left + 1) / w if left else 0.0, (top + 1) / h if top else 0.0,
              (right + 1) / w, (bottom + 1) / h)
    inner = [v != edge for v, edge in ((top, 0), (bottom, h - 1), (left, 0), (right, w - 1))]
    inner_sides = sum(inner)
    if inner_sides == 0 or not _plausible(box, picture_aspect):
        return None
    supports = [_side_support(strong_h, top, left, right), _side_support(strong_h, bottom, left, right),
                _side_support(strong_v.T, left, top, bottom), _side_support(strong_v.T, right, top, bottom)]
    if min(supports) < MIN_SIDE_SUPPORT or np.mean(supports) < MIN_MEAN_SUPPORT:
        return None
    # Ranked on the seams found, not on the picture's border, which supports
    # any box: a band between two seams (footage on a blurred copy of itself)
    # must outrank the half-pictures either seam cuts off.
    seams = [support for support, is_inner in zip(supports, inner) if is_inner]
    return float(np.mean(seams)) + 0.1 * inner_sides, box


def _plausible(box: Box, picture_aspect: float | None) -> bool:
    """Whether a box is of a size and shape an inset has: judged on the shape
    shown, not the shape in the squashed frame (a 2.39:1 clip atop a 9:16
    reaction is 4.3 times as wide as tall in the frame)."""
    return 0.04 <= box.area <= 0.85 and 0.3 <= box.shape(picture_aspect or 1.0) <= 3.5


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    return inter / (a.area + b.area - inter)
