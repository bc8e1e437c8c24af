"""Hashing stage: perceptual hashes of keyframes.

``FrameHash`` is a value object: it knows its algorithm, bit length and
version, and has a lossless text form (``str(h)`` / ``FrameHash.parse``), in
the spirit of imagehash's ``ImageHash``. Hashers turn grey keyframe pixels into
hashes; arrays of hashes are ``uint64`` numpy arrays of shape (n, bits // 64),
most significant word first, which is what the index stores and searches.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Protocol

import cv2
import imagehash
import numpy as np
import pdqhash
from PIL import Image

from .errors import BadInputError, DecodeError
from .features import MAX_QUERY_FRAMES, FeatureSampler, FrameFeatures
from .fetch import FetchedMedia
from .keyframes import MediaInfo, MotionRule, detail_threshold, extract, probe
from .insets import region_proposals
from .overlays import fill_overlay, overlay_mask
from .padding import content_box
from .rotation import rotation_of, unrotate
from .views import (BOX_FRAMES, BOX_SECONDS, CENTRE_HASH_SIZE, Box, View, index_views,
                    query_views, render)

if TYPE_CHECKING:
    from .config import Settings


@dataclass(frozen=True, order=True)
class FrameHash:
    algorithm: str
    bits: int
    version: int
    value: int  # unsigned, < 2**bits

    def __post_init__(self) -> None:
        if self.bits % 64 or not 0 <= self.value < (1 << self.bits):
            raise ValueError(f"{self.value:#x} does not fit {self.bits} bits")

    def __str__(self) -> str:
        return f"{self.algorithm}-{self.bits}-v{self.version}:{self.value:0{self.bits // 4}x}"

    @classmethod
    def parse(cls, text: str) -> "FrameHash":
        try:
            kind, hexdigits = text.strip().split(":")
            algorithm, bits, version = kind.rsplit("-", 2)
            if not version.startswith("v") or len(hexdigits) != int(bits) // 4:
                raise ValueError(text)
            return cls(algorithm, int(bits), int(version[1:]), int(hexdigits, 16))
        except ValueError as exc:
            raise BadInputError(f"not a frame hash: {text[:80]!r}") from exc

    def distance(self, other: "FrameHash") -> int:
        if (self.algorithm, self.bits, self.version) != (other.algorithm, other.bits, other.version):
            raise ValueError(f"cannot compare {self.scheme} with {other.scheme}")
        return (self.value ^ other.value).bit_count()

    @property
    def scheme(self) -> str:
        return f"{self.algorithm}-{self.bits}-v{self.version}"

    def words(self) -> np.ndarray:
        n = self.bits // 64
        return np.array([(self.value >> (64 * (n - 1 - i))) & ((1 << 64) - 1) for i in range(n)],
                        dtype=np.uint64)

    @classmethod
    def from_words(cls, scheme: str, words: Iterable[int]) -> "FrameHash":
        algorithm, bits, version = scheme.rsplit("-", 2)
        value = 0
        for word in words:
            value = (value << 64) | int(word)
        return cls(algorithm, int(bits), int(version[1:]), value)


class Hasher(Protocol):
    """Turns a grey keyframe into a hash. ``hash_many`` returns (n, words) uint64."""

    algorithm: str
    bits: int
    version: int

    def hash_many(self, frames: list[np.ndarray]) -> np.ndarray: ...


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """Rows of 0/1 (n, B) -> (n, B // 64) uint64, first bit most significant."""
    packed = np.packbits(bits.astype(np.uint8), axis=1)  # big-endian bytes
    return packed.view(">u8").astype(np.uint64)


class PHasher:
    """imagehash's pHash (64-bit DCT sign hash), the owner's named baseline."""

    algorithm, bits, version = "phash", 64, 1

    def hash_many(self, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return np.zeros((0, 1), np.uint64)
        rows = [imagehash.phash(Image.fromarray(f)).hash.reshape(-1) for f in frames]
        return _pack_bits(np.stack(rows))


class PDQHasher:
    """Meta's PDQ (256-bit) via pdqhash; quality is computed by keyframes instead."""

    algorithm, bits, version = "pdq", 256, 1

    def hash_many(self, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return np.zeros((0, 4), np.uint64)
        rows = [pdqhash.compute(np.repeat(f[:, :, None], 3, axis=2))[0] for f in frames]
        return _pack_bits(np.stack(rows))


HASHERS: dict[str, Hasher] = {"phash": PHasher(), "pdq": PDQHasher()}


def scheme_of(hasher: Hasher) -> str:
    return f"{hasher.algorithm}-{hasher.bits}-v{hasher.version}"


def hasher_for(scheme_or_name: str) -> Hasher:
    name = scheme_or_name.split("-")[0]
    if name not in HASHERS:
        raise BadInputError(f"unknown hash algorithm {scheme_or_name!r}")
    return HASHERS[name]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between rows of a (n, w) and b (m, w) -> (n, m)."""
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int32)


@dataclass(frozen=True)
class HashedVideo:
    """A fetched video with the hashes of its kept keyframes, ready to index or match.

    ``hashes`` are of the ``content`` view; ``views`` holds the hashes of every
    view in ``views.query_views`` (a query) or ``views.index_views`` (a video
    hashed to be indexed), by name. Both include ``content``, ``centre``, the
    reframings ``strip`` and/or ``band`` and, when padding was found, ``full``,
    ``full-centre``, ``full-strip`` and/or ``full-band``: what the index stores.
    ``sampled`` marks the uniform and scene-cut samples; the others are the
    frames of fast motion between them (``motion_rule``) a video sampled at the
    index's rate also keeps.
    """

    media: FetchedMedia
    info: MediaInfo
    scheme: str
    times: list[float]
    details: list[float]
    box: Box
    regions: list[Box]
    views: dict[str, np.ndarray]
    view_specs: list[View]  # in the order a query tries them, plain first
    sampled: list[bool]
    # Keypoints of about a frame a second (features.FeatureSampler); a query's
    # also of each such frame mirrored.
    features: list[FrameFeatures] = field(default_factory=list)
    mirrored_features: list[FrameFeatures] = field(default_factory=list)
    feature_step_s: float = 1.0  # seconds between described frames

    @property
    def hashes(self) -> np.ndarray:
        return self.views["content"]

    @property
    def duration_s(self) -> float:
        return self.info.duration_s or max(self.times, default=0.0)


def hash_video(media: FetchedMedia, settings: "Settings", hasher: Hasher, *,
               for_query: bool = True, sparse: bool = False) -> HashedVideo:
    """Hash every kept keyframe in each view a query tries or, with ``for_query``
    false, only in the views the index stores (``views.index_views``): a few
    views instead of dozens. Sampled at the index's rate (not ``sparse``), the
    frames of fast motion between the samples are kept too (``motion_rule``)."""
    info = probe(media.path)
    frames = extract(media.path, settings, info.duration_s, info.frame_rate, sparse,
                     motion=None if sparse else motion_rule(hasher, settings))
    # The first samples decide where the footage sits in the picture; the rest
    # stream through so that a long video never sits in memory.
    # Seconds, not frames: index and query are sampled at different rates and
    # must find the same box.
    opening: list = []
    samples = 0
    for frame in frames:
        opening.append(frame)
        samples += frame.sampled
        if samples == BOX_FRAMES or frame.t >= BOX_SECONDS:
            break
    least = detail_threshold([f.detail for f in opening if f.sampled], settings.min_detail)
    kept = [f for f in opening if f.detail >= least]
    head = [f for f in kept if f.sampled]
    frames = (f for f in frames if f.detail >= least)
    if not head:
        raise DecodeError(
            f"{media.path.name}: every decoded frame was black or flat; nothing to hash")
    aspect = info.width / info.height if info.width and info.height else None
    box = content_box([f.pixels for f in head], aspect)
    if for_query:
        pixels = [f.pixels for f in head]
        regions = region_proposals(pixels, aspect, box)
        rotation = rotation_of(pixels, aspect) if aspect else None
        views = query_views(box, aspect, regions, overlay_mask(pixels), rotation)
    else:
        regions = []
        views = index_views(box, aspect)
    times, details, sampled = [], [], []
    described: list[FrameFeatures] = []
    described_mirrored: list[FrameFeatures] = []
    # A query kept for the index afterwards (not sparse) is described as the index is.
    sampler = FeatureSampler(info.duration_s, aspect, MAX_QUERY_FRAMES if sparse else None)
    hashed: dict[str, list[np.ndarray]] = {v.name: [] for v in views}
    overlay = next((v.overlay for v in views if v.overlay is not None), None)
    rotation = next((v.rotation for v in views if v.rotation is not None), None)
    for batch in _batches(itertools.chain(kept, frames), 64):
        times += [f.t for f in batch]
        details += [round(f.detail, 2) for f in batch]
        sampled += [f.sampled for f in batch]
        plain = [f.pixels for f in batch]
        for f in batch:
            if f.sampled:
                _describe(sampler.offer(f.t, f.pixels), sampler, described,
                          described_mirrored if for_query else None)
        # Filled at full frame size: at hash size the fill matched 14 points fewer frames.
        filled = [fill_overlay(p, overlay) for p in plain] if overlay is not None else None
        # Turned back once per frame for the plain and the mirrored view alike.
        turned = [unrotate(p, rotation) for p in plain] if rotation is not None else None
        for view in views:
            pixels = (filled if view.overlay is not None
                      else turned if view.rotation is not None else plain)
            hashed[view.name].append(hasher.hash_many([render(p, view) for p in pixels]))
    _describe(sampler.flush(), sampler, described, described_mirrored if for_query else None)
    return HashedVideo(media=media, info=info, scheme=scheme_of(hasher), times=times,
                       details=details, box=box, regions=regions,
                       views={name: np.concatenate(parts) for name, parts in hashed.items()},
                       view_specs=views, sampled=sampled,
                       features=described, mirrored_features=described_mirrored,
                       feature_step_s=sampler.step)


def _describe(due: list[tuple[float, np.ndarray]], sampler: FeatureSampler,
              plain: list[FrameFeatures], mirrored: list[FrameFeatures] | None) -> None:
    """Describe the keyframes due, adding their features (and, for a query, their
    mirror images') to the lists."""
    for t, pixels in due:
        features = sampler.describe(t, pixels)
        if features is not None:
            plain.append(features)
            if mirrored is not None:
                mirrored.append(sampler.mirror(features))


# Fast motion (a bat's swing, wings, a knife through fruit) changes the picture
# between two samples 0.125 s apart by more than the match radius, and a copy's
# frame sampled between them, slowed down, sped up, reversed or at 10 fps, met
# neither. Between the samples the index also keeps each frame further than
# MOTION_SHARE of the radius from the last frame kept (whole picture, hashed
# from 64x64): none on still footage, every frame of the fastest. Measured on
# bench/accuracy's missed copies of its three fastest clips, frames within the
# radius of the indexed ones: fruit sped up 0 -> 14 of 18, reversed 0 -> 23 of
# 26, butterfly slowed down 22 -> 38 of 43, at 10 fps 11 -> 22 of 38.
MOTION_SHARE = 0.9


def motion_rule(hasher: Hasher, settings: "Settings") -> MotionRule:
    """Frames MOTION_SHARE of the match radius or more from the last frame kept."""
    def whole_picture(pixels: np.ndarray) -> np.ndarray:
        small = cv2.resize(pixels, (CENTRE_HASH_SIZE, CENTRE_HASH_SIZE),
                           interpolation=cv2.INTER_AREA)
        return hasher.hash_many([small])[0]

    return MotionRule(whole_picture, MOTION_SHARE * settings.radius_for(hasher.algorithm))


def _batches(items: Iterable, size: int) -> Iterable[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
