"""Padding: where the footage sits inside letterbox bars, borders or blurred fill.

Reposts wrap footage in letterbox bars, coloured borders or a blurred, enlarged
copy of itself (the 9:16 "TikTok" repost). ``content_box`` finds the footage from
a video's first frames: rows and columns at the edges whose fine detail,
averaged over time, is a small fraction of the picture's, or a flat band ending
in a sharp rise of detail on both sides; a border hidden on one side under a
banner, closed at its width on the other three; or the band whose enlargement,
blurred, predicts the fill around it. The box is a property of the content, so
an original and its padded repost crop to the same footage.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .views import BOX_FRAMES, FULL, Box

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
TEXT_ROWS = 0.03  # a title or ticker's text is at least this thick
MIN_CONTENT = 0.2
LINE_ROWS = 3  # of 256: thinner runs of detail on padding are drawn lines
# A title beside the footage sits on a solid panel or bars (the squeezeback's
# "LIVE"), and a solid stretch of TEXT_GAP or more parts it from the footage; a
# band parted from the footage by a faintly textured gap only (a plain wall:
# 0.04-0.09 of the footage's detail) is footage: a door at the office's edge.
SOLID_GAP = 0.02


def content_box(frames: list[np.ndarray], aspect: float | None = None) -> Box:
    """The footage inside letterbox bars, borders or blurred fill; FULL if none.
    ``aspect``: the picture's true width / height (frames arrive squashed square),
    needed to tell bars of one width on every side."""
    if not frames:
        return FULL
    frames = frames[:BOX_FRAMES]
    band = blurred_fill_band(frames)
    if band is not None:
        return band
    # Second derivatives: blur removes them far more than it removes gradients.
    detail = np.mean([np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F, ksize=1))
                      for f in frames], axis=0)
    top, bottom = _content_span(detail.mean(axis=1))
    # Each side is judged on the footage's rows, then on its columns: a ticker
    # or a caption bar across the bottom carries detail into the columns of a
    # panel beside the footage (the news squeezeback: footage shrunk into a
    # corner, a graphic down one side and a ticker along the bottom), which
    # would otherwise pass for footage.
    left, right = _content_span(_part(detail, top, bottom).mean(axis=0), columns=True)
    if (left, right) != (0.0, 1.0):
        top, bottom = _content_span(_part(detail.T, left, right).mean(axis=0))
    box = Box(left, top, right, bottom)
    if aspect and abs(top - (1.0 - bottom)) > BORDER_TOLERANCE:
        box = _border_under_a_bar(detail, top, bottom, aspect) or box
    if box.x1 - box.x0 < MIN_CONTENT or box.y1 - box.y0 < MIN_CONTENT:
        return FULL
    return box


def _part(detail: np.ndarray, start: float, end: float) -> np.ndarray:
    """The rows from ``start`` to ``end`` (fractions) of a detail map."""
    n = len(detail)
    return detail[round(start * n):max(round(end * n), round(start * n) + 1)]


# A border of one width all round whose top or bottom is hidden under a ticker
# or caption bar (the news repost: footage framed, a scrolling banner along the
# bottom): the bar's text makes it look like footage, so the box would take it
# in, off the footage's centre by half the bar. Measured on the benchmark's 25
# news reposts: the footage's centre met the indexed centre at medians of 10-25
# bits on 18 with the box closed at the border's width; 4 checked with the bar
# taken in met it at 60-72.
BORDER_TOLERANCE = 0.02  # of the picture's height: bars one width within this


def _border_under_a_bar(detail: np.ndarray, top: float, bottom: float, aspect: float
                        ) -> Box | None:
    """The box closed at the border's width on the hidden side, when the bars on
    the three other sides are that width (compared in pixels, not fractions, so
    the squashed frame's aspect is undone)."""
    n = len(detail)
    # The median over the rows between the bars: the banner's text, in a few of
    # them, must not pass for footage along the sides.
    rows = detail[round(top * n):round(bottom * n)]
    if len(rows) < MIN_CONTENT * n:
        return None
    profile = np.median(rows, axis=0)
    # Footage whose own edge is plain (a white wall) leaves only the line where
    # it meets the border, which content_span drops as a line drawn on padding;
    # the flat margins, up to the first column of any detail, still give it.
    for left, right in (_content_span(profile), _flat_margins(profile)):
        for border in (top, 1.0 - bottom):
            if border > 0 and all(abs(side * aspect - border) <= BORDER_TOLERANCE
                                  for side in (left, 1.0 - right)):
                return Box(left, border, right, round(1.0 - border, 3))
    return None


def _flat_margins(detail: np.ndarray) -> tuple[float, float]:
    """Where the flat runs at either end of a detail profile stop, the touching
    line left out as in content_span."""
    n = len(detail)
    flat = detail <= PADDING_DETAIL_RATIO * float(np.percentile(detail, 90))
    if flat.all():
        return 0.0, 1.0
    lead, trail = int(np.argmin(flat)), int(np.argmin(flat[::-1]))
    start = lead + 1 if lead else 0
    end = n - trail - 1 if trail else n
    return round(start / n, 3), round(end / n, 3)


# Blurred fill (landscape footage in a 9:16 repost, 4:3 or phone footage on a
# 16:9 broadcast) is the footage itself, magnified to cover the frame, blurred,
# with the footage centred on it. Where the footage's own edges are plain (a
# wall, a white studio, night sky) or the blur is light, detail cannot tell them
# from the fill; its content can: for the true band, the band magnified and
# blurred predicts the fill. On the benchmark's 50 blurred-fill 9:16 reposts
# (half of them titled on the fill) the band is found within a row on 43 (of the
# rest, 2 have fill near black, content_span's case, 2 portrait footage and no
# band, 3 a cartoon on white or a GIF not told apart), and on none of 661 other
# edits. A plain wall's shading fits a band of its own middle too (two negatives
# did), which the last check, the fit without shading, rules out.
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
    # The fit magnifies a band to the frame's other side: it takes a square frame,
    # as decoded; a part of one (a side of a split screen) is squashed square too.
    size = max(picks[0].shape)
    if picks[0].shape != (size, size):
        picks = [cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA) for p in picks]
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


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def _without_shading(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blurred as the fill, less what changes only over FILL_SHADING times that."""
    blurred = _blur(image, sigma)
    return blurred - _blur(blurred, FILL_SHADING * sigma)


def _fill_fit(frames: list[np.ndarray], blurred: list[np.ndarray], sigma: float, rows: int,
              blur: Callable[[np.ndarray, float], np.ndarray] = _blur) -> tuple[float, float]:
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
        cover = blur(cover, sigma)
        actual.append(np.concatenate([frame_blurred[:rows], frame_blurred[n - rows:]]))
        predicted.append(np.concatenate([cover[:rows], cover[n - rows:]]))
    a, p = np.stack(actual), np.stack(predicted)  # frames x fill rows x columns
    overall = _correlation(a.reshape(1, -1), p.reshape(1, -1))[0]
    by_row = _correlation(a.transpose(1, 0, 2).reshape(2 * rows, -1),
                          p.transpose(1, 0, 2).reshape(2 * rows, -1))
    return overall, float(min(np.median(by_row[:rows]), np.median(by_row[rows:])))


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; 0 where flat."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.divide((a * b).sum(axis=1), denominator, out=np.zeros(len(a)),
                     where=denominator > 0)


def _content_span(detail: np.ndarray, columns: bool = False) -> tuple[float, float]:
    n = len(detail)
    reference = float(np.percentile(detail, 90))
    if reference <= 0:
        return 0.0, 1.0
    rich = _without_lines(np.flatnonzero(detail >= PADDING_DETAIL_RATIO * reference))
    start, end = (rich[0], rich[-1] + 1) if len(rich) else (0, n)
    # Fill cut by the step alone must frame the footage symmetrically (reposts
    # centre it), and be clearly more than the ratio found: one row off costs
    # ~30 bits. What it frames must be one stretch of detail: a title or ticker
    # parted from the footage by flat rows is text on the fill, however
    # symmetric the margins happen to be.
    lead, trail = _step_from_flat(detail, reference), _step_from_flat(detail[::-1], reference)
    if lead and trail and abs(lead - trail) <= 2 and _one_stretch(
            rich[(rich >= lead) & (rich < n - trail)], n):
        start = lead if lead > start + 2 else start
        end = n - trail if n - trail < end - 2 else end
    else:
        start, end = _without_text_on_fill(rich, start, end, n,
                                           detail if columns else None, reference)
    # The Laplacian also fires on the padding line touching the footage.
    start, end = (start + 1 if start else 0), (end - 1 if end < n else n)
    start_f, end_f = start / n, end / n
    # Snap small margins to the edge so that encoder noise never changes a box.
    start_f = 0.0 if start_f < MIN_PADDING else round(start_f, 3)
    end_f = 1.0 if end_f > 1 - MIN_PADDING else round(end_f, 3)
    return start_f, end_f


def _one_stretch(rich: np.ndarray, n: int) -> bool:
    """Whether the bands of detail at least TEXT_ROWS thick lie within TEXT_GAP
    of each other: a title parted from the footage by flat rows is not footage,
    while footage's own flat stretches (a cartoon's white ground) part only
    specks of detail."""
    bands = [(run[0], run[-1]) for run in _runs(rich) if len(run) >= TEXT_ROWS * n]
    return all(later[0] - earlier[1] <= TEXT_GAP * n
               for earlier, later in zip(bands, bands[1:]))


def _without_lines(rich: np.ndarray) -> np.ndarray:
    """The rows of detail without runs thinner than LINE_ROWS set apart by flat
    rows on both sides: the edge of a bar or a panel drawn on the padding (a
    ticker's top edge) is not footage, and would bridge the flat rows that part
    a ticker from the footage. (A thin run a row or two from footage is kept:
    footage can dip that briefly.)"""
    if len(rich) == 0:
        return rich
    runs = _runs(rich)
    keep = [run for i, run in enumerate(runs)
            if len(run) >= LINE_ROWS
            or (i > 0 and run[0] - runs[i - 1][-1] <= LINE_ROWS)
            or (i + 1 < len(runs) and runs[i + 1][0] - run[-1] <= LINE_ROWS)]
    return np.concatenate(keep) if keep else rich


def _runs(rich: np.ndarray) -> list[np.ndarray]:
    """The sorted rows of detail cut into runs of consecutive rows."""
    return np.split(rich, np.flatnonzero(np.diff(rich) > 1) + 1)


def _without_text_on_fill(rich: np.ndarray, start: int, end: int, n: int,
                          detail: np.ndarray | None = None, reference: float = 0.0
                          ) -> tuple[int, int]:
    """The span without a thin band of detail parted by padding from footage
    that has padding on both sides: a title written on the blurred fill or the
    bars ("wait for it" above a 9:16 repost) would otherwise stretch the box
    over the fill between. (Footage reaching an edge keeps its bands: a plain
    wall between a picture on it and a signer is no padding.) Given the
    columns' ``detail``, a band beside the footage is a title only across a
    solid gap (see SOLID_GAP)."""
    if len(rich) < 2:
        return start, end
    gaps = np.flatnonzero(np.diff(rich) > TEXT_GAP * n)
    bounds = np.concatenate([[0], gaps + 1, [len(rich)]])
    runs = [(int(rich[a]), int(rich[b - 1]) + 1) for a, b in zip(bounds[:-1], bounds[1:])]
    main = max(runs, key=lambda run: run[1] - run[0])
    if not (main[0] > 0 and main[1] < n and all(
            run == main or run[1] - run[0] <= TEXT_BAND * n for run in runs)):
        return start, end
    if detail is None:
        return main

    def parts(a: tuple[int, int], b: tuple[int, int]) -> bool:
        """Whether a solid stretch of TEXT_GAP or more lies between two runs."""
        return longest_run(detail[a[1]:b[0]] <= SOLID_GAP * reference) >= TEXT_GAP * n

    # Outward from the footage, bands parted by a textured gap are footage too.
    first = last = runs.index(main)
    while first > 0 and not parts(runs[first - 1], runs[first]):
        first -= 1
    while last + 1 < len(runs) and not parts(runs[last], runs[last + 1]):
        last += 1
    return runs[first][0], runs[last][1]


def longest_run(flags: np.ndarray) -> int:
    """The length of the longest run of true values."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return int((changes[1::2] - changes[::2]).max()) if len(changes) else 0


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
