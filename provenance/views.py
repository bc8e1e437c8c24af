"""Views of a keyframe: the parts of the picture that are hashed.

Both sides hash the footage inside any padding (``content``, its box found by
``padding.content_box``), its ``centre`` and the centred parts of it a platform's
crop to another shape keeps (``reframings``); queries also try the uncropped
frame, the mirror images of both, the centre at a ladder of zooms
(``zoom_scales``; the whole picture's too when padding is uneven), insets
(``insets.region_proposals``), the footage with static graphics filled in
(``overlays.overlay_mask``) and a picture turned inside its frame turned back
(``rotation.rotation_of``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

HASH_SIZE = 128
BOX_SECONDS = 30.0  # the opening seconds whose frames decide the box
BOX_FRAMES = 240  # at most this many of them (30 s at the index rate)
# A repost zoomed in on the footage keeps its centre and loses its edges, and
# captions, meme text, tickers and logos sit at the edges too. The index also
# hashes the centre CENTRE_SHARE of the footage (width and height); a query hashes
# its own centre at the share that meets it if the query kept ``scale`` of the
# reference's width and height, for each scale of a ladder fine enough that one
# rung is within 1 % of any crop down to FINE_ZOOM (a slight zoom that trims
# a logo or a border) and within 2 % down to MIN_ZOOM.
# PDQ forgives little scaling: measured on the benchmark's 80 % crops, 1.25 % off
# costs ~12 bits, 2 % ~21, 3 % ~30; on its 90 % news crops, the rung 1.2 % off
# met the indexed centre at 23-27 bits, 0.6 % off scored twice as high.
CENTRE_SHARE = 0.6
# The centre views are hashed from 64x64 pixels, the size PDQ reduces any picture
# to: a third of the time at 128x128, and as close on the benchmark's crops (at
# 1.25 % off the rung, 8 bits against 12).
CENTRE_HASH_SIZE = 64
# Platforms crop a repost to fill their frame: a landscape clip to a square or
# vertical one keeping its full height, a vertical clip to a landscape one keeping
# its full width, centred unless someone moves the crop. Every such crop of a
# shape between the footage's own and STRIP_SHAPE (width / height) keeps the
# footage's centred full-height STRIP_SHAPE part, and its own centred part of
# that shape is that very part; likewise a band of BAND_SHAPE at full width. Both
# sides hash the strip of footage wider than it by REFRAME_MIN_CUT, the band of
# footage taller than it by as much (a picture between the two has both).
STRIP_SHAPE = 9 / 16
BAND_SHAPE = 16 / 9
REFRAME_MIN_CUT = 1.1
# Two boxes this close on every side (a share of the picture) hash alike: PDQ
# forgives about 1 % of scale.
SAME_BOX = 0.01
# Padding this much wider on one side of an axis than on the other (a share of
# the picture) is not a frame around the footage.
UNEVEN_PADDING = 0.02
FINE_ZOOM_STEP = 1.02
FINE_ZOOM = 0.8
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

    def shape(self, aspect: float) -> float:
        """This box's true width / height in a picture whose true width / height
        is ``aspect`` (frames arrive squashed square)."""
        return aspect * (self.x1 - self.x0) / (self.y1 - self.y0)

    def near(self, other: "Box", tolerance: float) -> bool:
        """Each side within ``tolerance`` (a share of the picture) of the other's."""
        return max(abs(self.x0 - other.x0), abs(self.y0 - other.y0), abs(self.x1 - other.x1),
                   abs(self.y1 - other.y1)) <= tolerance

    def centred_part(self, aspect: float, shape: float) -> "Box":
        """The centred part of this box whose true width / height is ``shape``, of
        its full height if the box is wider, of its full width if taller;
        ``aspect`` is the whole picture's true width / height."""
        own = self.shape(aspect)
        if shape < own:
            margin = (self.x1 - self.x0) * (1.0 - shape / own) / 2
            return Box(self.x0 + margin, self.y0, self.x1 - margin, self.y1)
        margin = (self.y1 - self.y0) * (1.0 - own / shape) / 2
        return Box(self.x0, self.y0 + margin, self.x1, self.y1 - margin)


FULL = Box()
FULL_CENTRE = FULL.centre(CENTRE_SHARE)


@dataclass(frozen=True)
class Rotation:
    """The picture was turned ``degrees`` clockwise inside a frame of its own
    size, its corners cut off and the gaps filled flat. ``aspect`` is the true
    width / height: frames arrive squashed square."""

    degrees: float
    aspect: float
    # Where the footage sits in the picture turned back upright: inside bars
    # that were turned with it, or the whole frame.
    box: Box = Box()


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
    # "9:16" or "16:9" for the views of the footage's centred part of that shape
    # that platform crops keep (reframings); None: not such a part.
    part: str | None = None
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


def zoom_scales() -> list[float]:
    """The crops a query is tried at, widest first: 1.0, 0.98, ... 0.804, 0.788,
    0.758, ... 0.648."""
    scales, scale = [], 1.0
    while scale >= MIN_ZOOM:
        scales.append(round(scale, 3))
        scale /= FINE_ZOOM_STEP if scale >= FINE_ZOOM else ZOOM_STEP
    return scales


def reframings(box: Box, aspect: float | None, prefix: str = "") -> list[View]:
    """The box's centred parts that platform crops keep (STRIP_SHAPE,
    BAND_SHAPE), those that cut it by REFRAME_MIN_CUT at least: one or both for
    any box, named ``prefix`` + "strip" or "band". ``aspect``: the picture's true
    width / height (None: taken as square)."""
    aspect = aspect or 1.0
    own = box.shape(aspect)
    return [View(prefix + name, box.centred_part(aspect, shape), False, part=part)
            for name, part, shape, cut in (("strip", "9:16", STRIP_SHAPE, own / STRIP_SHAPE),
                                           ("band", "16:9", BAND_SHAPE, BAND_SHAPE / own))
            if cut >= REFRAME_MIN_CUT]


def _whole_picture_parts(box: Box, aspect: float | None) -> list[View]:
    """The whole picture's ``reframings`` (named "full-..."), but for any that
    shows what the footage or its own parts do, each side within SAME_BOX of the
    picture: footage letterboxed in exactly its whole picture's part (16:9 in a
    9:16 frame) would store every keyframe twice."""
    shown = [box] + [part.box for part in reframings(box, aspect)]
    return [part for part in reframings(FULL, aspect, "full-")
            if not any(part.box.near(other, SAME_BOX) for other in shown)]


def _padded_unevenly(box: Box) -> bool:
    """Padding found on one side of an axis and not, or much less, on the other."""
    return (abs(box.x0 - (1.0 - box.x1)) > UNEVEN_PADDING
            or abs(box.y0 - (1.0 - box.y1)) > UNEVEN_PADDING)


def index_views(box: Box, aspect: float | None = None) -> list[View]:
    """What the index stores per keyframe: the footage, its centre and its
    ``reframings``, and when padding was found the whole picture, its centre and
    its reframings too (so a copy whose padding was judged otherwise still meets
    one of them: a plain wall along an edge can pass for padding in one copy and
    not in another)."""
    views = [View("content", box, False),
             View("centre", box.centre(CENTRE_SHARE), False, scale=1.0)]
    views += reframings(box, aspect)
    if not box.is_full:
        views += [View("full", FULL, False),
                  View("full-centre", FULL_CENTRE, False, scale=1.0)]
        # A dark or flat stretch along one edge passes for padding in one copy
        # and not in a crop of it, which moves the part's centre.
        views += _whole_picture_parts(box, aspect)
    return views


def query_views(box: Box, aspect: float | None = None, regions: list[Box] = (),
                overlay: np.ndarray | None = None, rotation: Rotation | None = None
                ) -> list[View]:
    """What a query tries, plain first: the footage, the whole picture, their
    mirror images, the footage's centre at every zoom of ``zoom_scales`` and
    mirrored (and the whole picture's when padding is uneven), the
    ``reframings`` of the footage (and of the whole picture when padding was
    found) and mirrored, any inset or split-screen part, the footage with
    static overlays filled in (when ``overlay`` marks some) and the picture
    turned back (when ``rotation`` was found)."""
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
    if _padded_unevenly(box):
        # Bars and borders frame footage evenly; a plain wall along one edge of
        # a zoomed-in copy passes for padding on that side only (a signer's
        # office cropped to 80 %: its left 22 %), and the picture's own centre
        # is then tried at every zoom as well.
        for scale in zoom_scales()[1:]:
            centre = FULL.centre(CENTRE_SHARE / scale)
            views += [View(f"full-zoom-{scale:.3f}", centre, False, scale=scale),
                      View(f"full-zoom-{scale:.3f}-mirrored", centre, True, scale=scale)]
    parts = reframings(box, aspect) + ([] if box.is_full else _whole_picture_parts(box, aspect))
    for part in parts:
        views += [part, View(f"{part.name}-mirrored", part.box, True, part=part.part)]
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
        if not box.is_full:
            # Stickers near an edge can pass for the end of padding.
            views += [View("full-unmasked", FULL, False, overlay),
                      View("full-unmasked-mirrored", FULL, True, overlay)]
    if rotation is not None:
        # The corners a turn cut off are filled in, never restored; the centre
        # keeps none of them (measured on 5 of the benchmark's 5-degree turns:
        # whole 16-28 bits, centre 4-20).
        upright, centre = rotation.box, rotation.box.centre(CENTRE_SHARE)
        views += [View("rotated", upright, False, rotation=rotation),
                  View("rotated-mirrored", upright, True, rotation=rotation),
                  View("rotated-centre", centre, False, rotation=rotation, scale=1.0),
                  View("rotated-centre-mirrored", centre, True, rotation=rotation, scale=1.0)]
    return views
