"""The two anchors the product is compared against, on the same files.

vPDQ (Meta's video PDQ, PyPI ``vpdq``): one PDQ hash a second with a quality score.
Matching follows python-threatexchange (extensions/vpdq: vpdq_brute_matcher,
vpdq_util, video_vpdq): drop frames of quality < 50, dedupe identical hashes, a
query frame matches when any compared frame is within 31 bits (and the other way
round), giving the matched percentage of the query and of the compared video.
Decision rules computed (RULES below); the headline one is ``VideoVPDQSignal``'s
``compare_hash``: a match when max(query %, compared %) >= 80. vPDQ's README
documents compared >= 80 % with query >= 0 %, vpdq_util's constants are query 80 %
and index 0 %; the strict "both >= 80 %" is reported alongside.

pHash: ffmpeg ``fps=1`` frames, ``imagehash.phash`` (64 bits). A reference is listed
when at least N distinct query frames are within T bits of one of its frames (N is
capped at the query's frame count); T and N are calibrated in accuracy.py to list
nothing on the negatives.

Hashing runs in worker processes, one thread each; results are cached per file.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

VPDQ_QUALITY = 50
VPDQ_DISTANCE = 31
RULES = {  # name -> (query % needed, compared % needed, combine)
    "max>=80": "max(query%, compared%) >= 80 (python-threatexchange VideoVPDQSignal)",
    "both>=80": "query% >= 80 and compared% >= 80",
    "compared>=80": "compared% >= 80, query% >= 0 (vPDQ README example)",
}
HEADLINE_RULE = "max>=80"


def vpdq_available() -> str | None:
    """None if vpdq imports, else why not."""
    try:
        import vpdq  # noqa: F401
    except Exception as exc:  # ImportError, or a missing libav*.so at load time
        return f"{type(exc).__name__}: {exc}"
    return None


def _cache_file(cache: Path, kind: str, key: str) -> Path:
    return cache / "anchors" / kind / f"{key}.json"


def _atomic_write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def hash_vpdq(path: str, key: str, cache: str) -> dict:
    out = _cache_file(Path(cache), "vpdq", key)
    if out.is_file():
        return json.loads(out.read_text(encoding="utf-8"))
    import vpdq

    t0 = time.perf_counter()
    try:
        feats = vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)
        rows = [[f.hex, int(f.quality), round(float(f.timestamp), 3)] for f in feats]
        err = None
    except Exception as exc:  # a file vpdq cannot decode is a miss, not a crash
        rows, err = [], f"{type(exc).__name__}: {exc}"
    data = {"features": rows, "seconds": time.perf_counter() - t0, "error": err}
    _atomic_write(out, data)
    return data


def hash_phash(path: str, key: str, cache: str) -> dict:
    out = _cache_file(Path(cache), "phash", key)
    if out.is_file():
        return json.loads(out.read_text(encoding="utf-8"))
    import imagehash
    from PIL import Image

    t0 = time.perf_counter()
    hashes, err = [], None
    try:
        w, h = _dims(path)
        proc = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                               "-threads", "1", "-i", str(path), "-map", "0:v:0", "-vf",
                               "fps=1,format=gray", "-f", "rawvideo", "-"],
                              capture_output=True, check=True)
        frames = np.frombuffer(proc.stdout, np.uint8)
        frames = frames[: len(frames) // (w * h) * (w * h)].reshape(-1, h, w)
        for f in frames:
            bits = imagehash.phash(Image.fromarray(f)).hash.reshape(-1)
            hashes.append(int("".join("1" if b else "0" for b in bits), 2))
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}"
    data = {"hashes": [f"{v:016x}" for v in hashes], "seconds": time.perf_counter() - t0,
            "error": err}
    _atomic_write(out, data)
    return data


def _dims(path: str) -> tuple[int, int]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    w, h = out.strip().splitlines()[0].split(",")[:2]
    return int(w), int(h)


def hash_both(path: str, key: str, cache: str, with_vpdq: bool) -> tuple[str, dict, dict | None]:
    """Worker entry point."""
    ph = hash_phash(path, key, cache)
    vp = hash_vpdq(path, key, cache) if with_vpdq else None
    return key, ph, vp


# --------------------------------------------------------------------------- matching

def _words(hexes: list[str], n_words: int) -> np.ndarray:
    if not hexes:
        return np.zeros((0, n_words), np.uint64)
    return np.array([[int(h[i * 16:(i + 1) * 16], 16) for i in range(n_words)] for h in hexes],
                    dtype=np.uint64)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.int32)
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int32)


class VpdqRefs:
    """Reference side of the brute-force vPDQ matcher, filtered and deduped once."""

    def __init__(self, refs: dict[str, dict]) -> None:
        self.refs = {}
        for ref_id, data in refs.items():
            hexes, times = _filter_dedupe(data["features"])
            self.refs[ref_id] = (_words(hexes, 4), np.array(times, float))

    def match(self, query: dict) -> list[dict]:
        """Per reference: query %, compared %, and the matched reference span."""
        hexes, _ = _filter_dedupe(query["features"])
        q = _words(hexes, 4)
        out = []
        for ref_id, (r, rt) in self.refs.items():
            if len(q) == 0 or len(r) == 0:
                out.append({"ref": ref_id, "q": 0.0, "c": 0.0, "seg": None})
                continue
            close = _dist(q, r) <= VPDQ_DISTANCE
            q_pct = 100.0 * close.any(axis=1).sum() / len(q)
            c_hit = close.any(axis=0)
            c_pct = 100.0 * c_hit.sum() / len(r)
            seg = (float(rt[c_hit].min()), float(rt[c_hit].max()) + 1.0) if c_hit.any() else None
            out.append({"ref": ref_id, "q": round(q_pct, 2), "c": round(c_pct, 2), "seg": seg})
        return out


def _filter_dedupe(features: list) -> tuple[list[str], list[float]]:
    # python-threatexchange: quality_filter(dedupe(features), 50)
    seen, hexes, times = set(), [], []
    for hex_, quality, t in features:
        if hex_ in seen:
            continue
        seen.add(hex_)
        if quality >= VPDQ_QUALITY:
            hexes.append(hex_)
            times.append(t)
    return hexes, times


def vpdq_listed(scores: list[dict], rule: str) -> list[dict]:
    """References listed under a rule, best first (by max then mean of the two %)."""
    def ok(s):
        if rule == "max>=80":
            return max(s["q"], s["c"]) >= 80.0
        if rule == "both>=80":
            return s["q"] >= 80.0 and s["c"] >= 80.0
        if rule == "compared>=80":
            return s["c"] >= 80.0
        raise ValueError(rule)
    hits = [s for s in scores if ok(s)]
    return sorted(hits, key=lambda s: (-max(s["q"], s["c"]), -(s["q"] + s["c"]), s["ref"]))


class PhashRefs:
    def __init__(self, refs: dict[str, dict]) -> None:
        self.refs = {k: _words(v["hashes"], 1) for k, v in refs.items()}

    def nearest(self, query: dict) -> dict[str, np.ndarray]:
        """Per reference: (nearest distance per query frame, reference index of it)."""
        q = _words(query["hashes"], 1)
        out = {}
        for ref_id, r in self.refs.items():
            d = _dist(q, r)
            if d.size == 0:
                out[ref_id] = (np.zeros(0, np.int32), np.zeros(0, np.int64))
            else:
                out[ref_id] = (d.min(axis=1), d.argmin(axis=1))
        return out


def phash_listed(nearest: dict[str, tuple], n_query: int, t: int, n: int) -> list[dict]:
    need = max(1, min(n, n_query))
    hits = []
    for ref_id, (dmin, arg) in nearest.items():
        ok = dmin <= t
        count = int(ok.sum())
        if count >= need and count > 0:
            sec = arg[ok]
            hits.append({"ref": ref_id, "count": count, "mean": float(dmin[ok].mean()),
                         "seg": (float(sec.min()), float(sec.max()) + 1.0)})
    return sorted(hits, key=lambda h: (-h["count"], h["mean"], h["ref"]))
