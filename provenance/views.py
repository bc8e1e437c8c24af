"""Views of a keyframe: the parts of the picture that are hashed.

Reposts wrap footage in letterbox bars, coloured borders or a blurred,
enlarged copy of itself (the 9:16 "TikTok" repost). ``content_box`` finds the
footage inside such padding from a video's frames: rows and columns at the
edges whose fine detail, averaged over time, is a small fraction of the
picture's, or a flat band ending in a sharp rise of detail on both sides.
The box is a property of the content, so an original and its padded repost
crop to the same footage. Both sides hash the ``content`` view and its
``centre``; queries also try the uncropped frame, the mirror images of both,
the centre at a ladder of zooms (``zoom_scales``), insets
(``region_proposals``), the footage with static graphics filled in
(``overlay_mask``) and a picture turned inside its frame turned back
(``rotation_of``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from .keyframes import FRAME_SIZE

HASH_SIZE = 128
# A side counts as padding when its fine detail (mean |Laplacian| over time)
# is under this fraction of the picture's: black bars and borders measure 0,
# blurred fill 0.06-0.09, the flattest footage seen (out-of-focus bokeh) 0.13.
PADDING_DETAIL_RATIO = 0.10
MIN_PADDING = 0.03  # ignore slivers: encoders leave a few dark rows
FLAT_FILL_RATIO = 0.2  # fill under noise: never over this share of the footage's detail
STEP_RISE = 4.0  # ...and the footage next to it this many times busier
STEP_ROWS = 4
# A band of detail on the padding, under TEXT_BAND of the picture and parted from
# the footage by over TEXT_GAP of flat rows (or columns), is text or a logo.
TEXT_BAND = 0.12
TEXT_GAP = 0.04
MIN_CONTENT = 0.2
BOX_SECONDS = 30.0  # the opening seconds whose frames decide the box
BOX_FRAMES = 240  # at most this many of them (30 s at the index rate)
# A repost zoomed in on the footage keeps its centre and loses its edges, and
# captions, meme text, tickers and logos sit at the edges too. The index also
# hashes the centre CENTRE_SHARE of the footage (width and height); a query hashes
# its own centre at the share that meets it if the query kept ``scale`` of the
# reference's width and height, for each scale of a ladder fine enough that one
# rung is within 2 % of any crop down to MIN_ZOOM. PDQ forgives little scaling:
# measured on the benchmark's 80 % crops, 1.25 % off costs ~12 bits, 2 % ~21, 3 % ~30.
CENTRE_SHARE = 0.6
# The centre views are hashed from 64x64 pixels, the size PDQ reduces any picture
# to: a third of the time at 128x128, and as close on the benchmark's crops (at
# 1.25 % off the rung, 8 bits against 12).
CENTRE_HASH_SIZE = 64
ZOOM_STEP = 1.04
MIN_ZOOM = 0.64


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

    def centre(self, share: float) -> "Box":
        """The middle ``share`` of this box's width and height."""
        margin_x = (self.x1 - self.x0) * (1.0 - share) / 2
        margin_y = (self.y1 - self.y0) * (1.0 - share) / 2
        return Box(self.x0 + margin_x, self.y0 + margin_y, self.x1 - margin_x, self.y1 - margin_y)


FULL = Box()
FULL_CENTRE = FULL.centre(CENTRE_SHARE)


@dataclass(frozen=True)
class Rotation:
    """The picture was turned ``degrees`` clockwise inside a frame of its own
    size, its corners cut off and the gaps filled flat. ``aspect`` is the true
    width / height: frames arrive squashed square."""

    degrees: float
    aspect: float


@dataclass(frozen=True)
class View:
    name: str
    box: Box
    mirrored: bool
    # Static graphics burnt in over the footage (see overlay_mask), filled in
    # before hashing; None when the view shows the pixels as they are.
    overlay: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The picture was found turned inside its frame (see rotation_of) and is
    # hashed turned back (unrotate); None: not turned.
    rotation: Rotation | None = None
    # For the views met by the index's centre hashes only: the share of the
    # reference's width and height the query is taken to show (1.0: the same
    # framing, the edges aside). None: met by the index's whole-footage hashes.
    scale: float | None = None
    # The rectangle proposed as an inset or one side of a split screen
    # (region_proposals) when the view is of it or of its centre: the rest of the
    # picture is other footage. None: not an inset.
    inset: Box | None = None

    @property
    def of_centre(self) -> bool:
        return self.scale is not None

    @property
    def hash_size(self) -> int:
        return CENTRE_HASH_SIZE if self.of_centre else HASH_SIZE

    @property
    def overlay_area(self) -> float:
        return float(self.overlay.mean()) if self.overlay is not None else 0.0


def render(frame: np.ndarray, view: View) -> np.ndarray:
    """The pixels a view hashes: cropped, flipped if asked, resized to its hash size.
    For a view with an ``overlay``, pass the frame already through ``fill_overlay``;
    for one with a ``rotation``, through ``unrotate`` (each done once per frame,
    however many views use it)."""
    part = view.box.crop(frame)
    if view.mirrored:
        part = part[:, ::-1]
    return cv2.resize(np.ascontiguousarray(part), (view.hash_size, view.hash_size),
                      interpolation=cv2.INTER_AREA)


def content_box(frames: list[np.ndarray]) -> Box:
    """The footage inside letterbox bars, borders or blurred fill; FULL if none."""
    if not frames:
        return FULL
    band = blurred_fill_band(frames[:BOX_FRAMES])
    if band is not None:
        return band
    # Second derivatives: blur removes them far more than it removes gradients.
    detail = np.mean([np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F, ksize=1))
                      for f in frames[:BOX_FRAMES]], axis=0)
    top, bottom = _content_span(detail.mean(axis=1))
    left, right = _content_span(detail.mean(axis=0))
    box = Box(left, top, right, bottom)
    if box.x1 - box.x0 < MIN_CONTENT or box.y1 - box.y0 < MIN_CONTENT:
        return FULL
    return box


# Blurred fill (landscape footage in a 9:16 repost, 4:3 or phone footage on a
# 16:9 broadcast) is the footage itself, magnified to cover the frame, blurred,
# with the footage centred on it. Where the footage's own edges are plain (a
# wall, a white studio, night sky) or the blur is light, detail cannot tell them
# from the fill; its content can: for the true band, the band magnified and
# blurred predicts the fill. On the benchmark's 50 blurred-fill 9:16 reposts
# (half of them titled on the fill) the band is found to the row on 43; the
# rest have fill near black (content_span's case) or no band (portrait footage).
# A plain wall's shading fits a band of its own middle too, which the last check
# (the fit without shading) rules out.
FILL_FIT_SIZE = 64
FILL_FIT_SIGMA = 2.0  # pixels at FILL_FIT_SIZE, scaled with the frame
FILL_FIT_FRAMES = 12
FILL_CANDIDATES = 2  # coarse bands refined
MIN_COARSE_FIT = 0.9
MIN_SIDE_FIT = 0.9  # correlation of the predicted fill with the actual, refined
MIN_FILL_PROMINENCE = 0.03
FILL_NEIGHBOUR = 3  # rows at FILL_FIT_SIZE
MIN_SHAPE_FIT = 0.85  # ...once shading is taken out
FILL_SHADING = 4.0  # times the fit's blur: coarser changes count as shading
FILL_MIN_SPREAD = 2.0  # grey levels: flat bars are content_span's job


# The frames at one size, blurred as the fill is taken to be, and that blur's sigma.
_Level = tuple[list[np.ndarray], list[np.ndarray], float]


def blurred_fill_band(frames: list[np.ndarray]) -> Box | None:
    """The footage's box when it sits centred on a blurred copy of itself, the
    band spanning the frame's width (fill above and below) or its height; None
    when no band explains the fill."""
    picks = [frames[i].astype(np.float32) for i in
             np.linspace(0, len(frames) - 1, min(FILL_FIT_FRAMES, len(frames))).astype(int)]
    found = []
    for transpose in (False, True):
        fitted = _fill_band_rows([p.T for p in picks] if transpose else picks)
        if fitted is not None:
            found.append((fitted[1], fitted[0], transpose))
    if not found:
        return None
    _, share, transpose = max(found)
    far = round(1.0 - share, 3)
    return Box(share, 0.0, far, 1.0) if transpose else Box(0.0, share, 1.0, far)


def _fill_band_rows(frames: list[np.ndarray]) -> tuple[float, float] | None:
    """(share of the height above the band, fit) for a band of whole rows, or None."""
    n = frames[0].shape[0]
    levels: dict[int, _Level] = {}

    def level(size: int) -> _Level:
        if size not in levels:
            scaled = frames if size == n else [
                cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
            sigma = FILL_FIT_SIGMA * size / FILL_FIT_SIZE
            levels[size] = scaled, [_blur(f, sigma) for f in scaled], sigma
        return levels[size]

    both = {r: _fill_fit(*level(FILL_FIT_SIZE), r) for r in range(2, FILL_FIT_SIZE // 2 - 2)}
    fits = {r: fit for r, (fit, _) in both.items()}
    prominence = {r: fit - max(fits[r - FILL_NEIGHBOUR], fits[r + FILL_NEIGHBOUR])
                  for r, fit in fits.items()
                  if r - FILL_NEIGHBOUR in fits and r + FILL_NEIGHBOUR in fits
                  and r >= 2 * MIN_PADDING * FILL_FIT_SIZE and fit >= MIN_COARSE_FIT
                  and both[r][1] >= MIN_COARSE_FIT}
    coarse = sorted((r for r in prominence if prominence[r] >= MIN_FILL_PROMINENCE),
                    key=prominence.get, reverse=True)[:FILL_CANDIDATES]
    for rows in coarse:
        refined = _refined_band(rows, level, n)
        if refined is not None:
            return round(refined[0] / n, 3), refined[1]
    return None


def _refined_band(rows: int, level: Callable[[int], _Level], n: int) -> tuple[int, float] | None:
    """The coarse band refined to the frames' own rows (one row off costs ~30
    bits), doubling the size each step (the coarsest rows may be one off, finer
    ones within half a row); None if it fails the checks there."""
    size, reach = FILL_FIT_SIZE, 2
    while size < n:
        size *= 2
        finer = {r: _fill_fit(*level(size), r)
                 for r in range(2 * rows - reach, 2 * rows + reach + 1)}
        rows, reach = max(finer, key=lambda r: finer[r][0]), 1
    frames, _, sigma = level(n)
    fit, worse_side = finer[rows]
    spread = np.concatenate([np.concatenate([f[:rows], f[n - rows:]]) for f in frames]).std()
    if worse_side < MIN_SIDE_FIT or spread < FILL_MIN_SPREAD:
        return None
    # Smooth light (a plain wall's shading, out-of-focus bokeh) fits a band of
    # its own middle alike; what only true fill keeps is the footage's shapes.
    if _fill_fit(frames, [_without_shading(f, sigma) for f in frames], sigma, rows,
                 _without_shading)[1] < MIN_SHAPE_FIT:
        return None
    return rows, fit


def _fill_fit(frames: list[np.ndarray], blurred: list[np.ndarray], sigma: float,
              rows: int, blur=None) -> tuple[float, float]:
    """How well a centred band (``rows`` rows off each end), magnified to cover
    the frame and blurred, predicts the blurred fill outside it: the correlation
    over all the fill, and the worse side's median correlation row by row (a
    title written on the fill spoils a few rows, a caption bar taken for fill
    most of one side)."""
    n = frames[0].shape[0]
    actual, predicted = [], []
    for frame, frame_blurred in zip(frames, blurred):
        band = frame[rows:n - rows]
        # The band's share of the height is the share of its width the cover shows.
        cover = cv2.resize(band[:, rows:n - rows], (n, n), interpolation=cv2.INTER_LINEAR)
        cover[rows:n - rows] = band
        cover = (blur or _blur)(cover, sigma)
        actual.append(np.concatenate([frame_blurred[:rows], frame_blurred[n - rows:]]))
        predicted.append(np.concatenate([cover[:rows], cover[n - rows:]]))
    a, p = np.stack(actual), np.stack(predicted)  # frames x fill rows x columns
    overall = _correlation(a.reshape(1, -1), p.reshape(1, -1))[0]
    by_row = _correlation(a.transpose(1, 0, 2).reshape(2 * rows, -1),
                          p.transpose(1, 0, 2).reshape(2 * rows, -1))
    return overall, float(min(np.median(by_row[:rows]), np.median(by_row[rows:])))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def _without_shading(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blurred as the fill, less what changes only over FILL_SHADING times that."""
    blurred = _blur(image, sigma)
    return blurred - _blur(blurred, FILL_SHADING * sigma)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; 0 where flat."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.divide((a * b).sum(axis=1), denominator, out=np.zeros(len(a)),
                     where=denominator > 0)


def _content_span(detail: np.ndarray) -> tuple[float, float]:
    n = len(detail)
    reference = float(np.percentile(detail, 90))
    if reference <= 0:
        return 0.0, 1.0
    rich = np.flatnonzero(detail >= PADDING_DETAIL_RATIO * reference)
    start, end = (rich[0], rich[-1] + 1) if len(rich) else (0, n)
    # Fill cut by the step alone must frame the footage symmetrically (reposts
    # centre it), and be clearly more than the ratio found: one row off costs
    # ~30 bits.
    lead, trail = _step_from_flat(detail, reference), _step_from_flat(detail[::-1], reference)
    if lead and trail and abs(lead - trail) <= 2:
        start = lead if lead > start + 2 else start
        end = n - trail if n - trail < end - 2 else end
    else:
        start, end = _without_text_on_fill(rich, start, end, n)
    # The Laplacian also fires on the padding line touching the footage.
    start, end = (start + 1 if start else 0), (end - 1 if end < n else n)
    start_f, end_f = start / n, end / n
    # Snap small margins to the edge so that encoder noise never changes a box.
    start_f = 0.0 if start_f < MIN_PADDING else round(start_f, 3)
    end_f = 1.0 if end_f > 1 - MIN_PADDING else round(end_f, 3)
    return start_f, end_f


def _without_text_on_fill(rich: np.ndarray, start: int, end: int, n: int) -> tuple[int, int]:
    """The span without a thin band of detail parted by padding from footage
    that has padding on both sides: a title written on the blurred fill or the
    bars ("wait for it" above a 9:16 repost) would otherwise stretch the box
    over the fill between. (Footage reaching an edge keeps its bands: a plain
    wall between a picture on it and a signer is no padding.)"""
    if len(rich) < 2:
        return start, end
    gaps = np.flatnonzero(np.diff(rich) > TEXT_GAP * n)
    bounds = np.concatenate([[0], gaps + 1, [len(rich)]])
    runs = [(int(rich[a]), int(rich[b - 1]) + 1) for a, b in zip(bounds[:-1], bounds[1:])]
    main = max(runs, key=lambda run: run[1] - run[0])
    if main[0] > 0 and main[1] < n and all(
            run == main or run[1] - run[0] <= TEXT_BAND * n for run in runs):
        return main
    return start, end


def _step_from_flat(detail: np.ndarray, reference: float) -> int:
    """Rows of flat fill before a sharp rise in detail, counted from the start.

    Compression noise lifts a blurred fill to ~0.15 of the footage's detail when
    the footage itself is plain (an office wall), over PADDING_DETAIL_RATIO. What
    still tells them apart is the step: the fill is uniformly flat and the
    footage starts several times busier. Flat footage thins out gradually
    (a ceiling, a sky) and is kept."""
    flat_enough = np.maximum.accumulate(detail) <= FLAT_FILL_RATIO * reference
    best = 0
    for rows in np.flatnonzero(flat_enough[:-STEP_ROWS]) + 1:
        if rows >= len(detail) * MIN_PADDING and (
                detail[rows:rows + STEP_ROWS].mean() >= STEP_RISE * detail[:rows].max()):
            best = int(rows)
    return best


def zoom_scales() -> list[float]:
    """The crops a query is tried at, widest first: 1.0, 0.962, ... 0.65."""
    scales, scale = [], 1.0
    while scale >= MIN_ZOOM:
        scales.append(round(scale, 3))
        scale /= ZOOM_STEP
    return scales


def index_views(box: Box) -> list[View]:
    """What the index stores per keyframe: the footage and its centre, and when
    padding was found the whole picture and its centre too (so a copy whose
    padding was judged otherwise still meets one of them: a plain wall along
    an edge can pass for padding in one copy and not in another)."""
    views = [View("content", box, False),
             View("centre", box.centre(CENTRE_SHARE), False, scale=1.0)]
    if not box.is_full:
        views += [View("full", FULL, False),
                  View("full-centre", FULL_CENTRE, False, scale=1.0)]
    return views


def query_views(box: Box, regions: list[Box] = (), overlay: np.ndarray | None = None,
                rotation: Rotation | None = None) -> list[View]:
    """What a query tries, plain first: the footage, the whole picture, their
    mirror images, the footage's centre at every zoom of ``zoom_scales`` and
    mirrored, any inset or split-screen part, the footage with static
    overlays filled in (when ``overlay`` marks some) and the picture turned
    back (when ``rotation`` was found)."""
    views = [View("content", box, False), View("content-mirrored", box, True)]
    if not box.is_full:
        views += [View("full", FULL, False), View("full-mirrored", FULL, True)]
    for scale in zoom_scales():
        name = "centre" if scale == 1.0 else f"zoom-{scale:.3f}"
        centre = box.centre(CENTRE_SHARE / scale)
        views += [View(name, centre, False, scale=scale),
                  View(f"{name}-mirrored", centre, True, scale=scale)]
    if not box.is_full:
        # A caption bar or ticker flat enough to pass for padding takes the
        # footage's box off centre; the picture's own centre is not.
        views += [View("full-centre", FULL_CENTRE, False, scale=1.0),
                  View("full-centre-mirrored", FULL_CENTRE, True, scale=1.0)]
    for i, region in enumerate(regions):
        # An inset's box is found to a pixel or two, and the whole inset forgives
        # little of it; its centre, hashed from 64x64, more (measured on a 70 %
        # inset of the car clip with the box exact: whole 48 bits, centre 20).
        name, centre = f"region-{i + 1}", region.centre(CENTRE_SHARE)
        views += [View(name, region, False, inset=region),
                  View(f"{name}-mirrored", region, True, inset=region),
                  View(f"{name}-centre", centre, False, scale=1.0, inset=region),
                  View(f"{name}-centre-mirrored", centre, True, scale=1.0, inset=region)]
    if overlay is not None and overlay.any():
        views += [View("content-unmasked", box, False, overlay),
                  View("content-unmasked-mirrored", box, True, overlay)]
    if rotation is not None:
        # The corners a turn cut off are filled in, never restored; the centre
        # keeps none of them (measured on 5 of the benchmark's 5-degree turns:
        # whole 16-28 bits, centre 4-20).
        views += [View("rotated", FULL, False, rotation=rotation),
                  View("rotated-mirrored", FULL, True, rotation=rotation),
                  View("rotated-centre", FULL_CENTRE, False, rotation=rotation, scale=1.0),
                  View("rotated-centre-mirrored", FULL_CENTRE, True, rotation=rotation,
                       scale=1.0)]
    return views


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
    fits = [_fit_turn(mask, aspect) for mask in (wedges, grown)]
    if any(f is None for f in fits):
        return None
    return Rotation(round(float(np.mean(fits)), 2), round(aspect, 4))


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


def region_proposals(frames: list[np.ndarray]) -> list[Box]:
    if len(frames) < 6:
        return []
    seams_h, seams_v = _seams(np.stack(frames[:BOX_FRAMES]).astype(np.float32))
    h, w = seams_h.shape
    rows = sorted(set(_refined(seams_h, _lines(seams_h)) + [0, h - 1]))
    cols = sorted(set(_refined(seams_v.T, _lines(seams_v.T)) + [0, w - 1]))
    found = []
    for i, top in enumerate(rows):
        for bottom in rows[i + 1:]:
            for j, left in enumerate(cols):
                for right in cols[j + 1:]:
                    box = _closed_box(seams_h, seams_v, top, bottom, left, right)
                    if box is not None:
                        found.append(box)
    found.sort(key=lambda item: -item[0])
    chosen: list[Box] = []
    for _, box in found:
        if all(_overlap(box, other) < 0.8 for other in chosen):
            chosen.append(box)
        if len(chosen) == MAX_PROPOSALS:
            break
    return chosen


def _seams(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of pixels where the picture below (first) or to the right (second)
    is another picture: it changes independently over time, or one side moves
    and the other never does, or, where neither moves, a sharp step stands
    still between them."""
    centred = stack - stack.mean(axis=0)
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
        longest = _longest_run(closed[row])
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


def _longest_run(line: np.ndarray) -> int:
    padded = np.concatenate([[False], line, [False]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return int((changes[1::2] - changes[::2]).max()) if len(changes) else 0


def _side_support(strong: np.ndarray, at: int, start: int, end: int) -> float:
    if at <= 0 or at >= strong.shape[0] - 1:
        return 1.0  # the picture's own border closes the box
    band = strong[max(at - 1, 0):at + 2, start:end + 1].any(axis=0)
    band = cv2.morphologyEx(band.astype(np.uint8)[None, :], cv2.MORPH_CLOSE,
                            np.ones((1, 9), np.uint8))[0]
    return float(band.mean()) if band.size else 0.0


def _closed_box(strong_h, strong_v, top, bottom, left, right) -> tuple[float, Box] | None:
    h, w = strong_h.shape
    # A seam at row r lies between rows r and r + 1.
    box = Box((left + 1) / w if left else 0.0, (top + 1) / h if top else 0.0,
              (right + 1) / w, (bottom + 1) / h)
    inner = [v != edge for v, edge in ((top, 0), (bottom, h - 1), (left, 0), (right, w - 1))]
    inner_sides = sum(inner)
    if inner_sides == 0 or not 0.04 <= box.area <= 0.85:
        return None
    aspect = (box.x1 - box.x0) / (box.y1 - box.y0)
    if not 0.3 <= aspect <= 3.5:
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


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    return inter / (a.area + b.area - inter)


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
