"""Compare pHash (64 bit) and PDQ (256 bit) as the default keyframe hash, on real footage.

What it measures: 16 corpus clips from distinct groups (5 of them intel-asl look-alikes;
the first 30 s only) are re-encoded four ways with ffmpeg (CRF 32 at 480p, CRF 40 at 1/4
size, eq colour/contrast/gamma change, a caption bar over the bottom 15%). Keyframes come
from ``keyframes.extract`` with pure uniform sampling (every 0.5 s, no scene cuts, no
detail filter). True pairs: each variant frame and the original frame of the same video
nearest in time (|dt| <= 0.26 s). Negatives (originals x variants): frames of different
groups, split into intel-asl vs other intel-asl ("lookalike") and the rest ("unrelated"),
and frames of the same video >= 3 s apart ("same>=3s"). Per algorithm it reports the
true-pair distance median/p95, negative min and 0.01%/0.1% quantiles, recall at the
largest threshold with zero false matches and at FP rate <= 1e-4, on all negatives
(R@0FP, R@1e-4) and on cross-video negatives only (unrelated + lookalike: R@0FPx,
R@1e-4x), and hashing time per frame.

Run:  PYTHONPATH=. .venv/bin/python bench/hash_compare.py [--corpus DIR] [--cache DIR]
Variants are cached (default ~/.cache/provenance-bench/hash_compare) and reused; the
results are written to hash_compare.json next to the cache dir.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from provenance.config import Settings
from provenance.hashing import HASHERS, hamming
from provenance.keyframes import extract, ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent
CAP_S, PAIR_DT, FAR_DT = 30.0, 0.26, 3.0
VIDEOS = ["mdn/flower.mp4", "mdn/friday.mp4", "mdn/tears-of-steel-battle-clip-medium.webm",
          "moviepy/big_buck_bunny_0_30.webm", "moviepy/chaplin.mp4", "torchcodec/nasa_13013.mp4",
          "flutter/butterfly.mp4", "psychopy/jwpIntro.mp4", "sports/baseball.mp4",
          "aana/squirrel.mp4", "sleap/small_robot.mp4", "intel-asl/asl-again.mkv",
          "intel-asl/asl-book.mkv", "intel-asl/asl-help.mkv", "intel-asl/asl-sister.mkv",
          "intel-asl/asl-walk.mkv"]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CAPTION = "drawbox=x=0:y=ih*0.85:w=iw:h=ih*0.15:color=black@0.85:t=fill" + (
    f",drawtext=fontfile={FONT}:text='BREAKING NEWS 24/7':fontcolor=white:fontsize=h*0.08"
    ":x=w*0.04:y=h*0.885" if FONT.exists() else "")
VARIANTS = {  # kind -> (video filter, x264 CRF)
    "crf32_480p": ("scale=-2:480", 32),
    "crf40_quarter": ("scale=trunc(iw/8)*2:trunc(ih/8)*2", 40),
    "eq_colour": ("eq=contrast=1.35:brightness=0.06:saturation=1.5:gamma=1.4", 23),
    "caption15": (CAPTION, 23),
}
SETTINGS = Settings().with_overrides(scene_threshold=1.1, min_detail=0.0,
                                     sample_interval_s=0.5, max_duration_s=CAP_S)


def make_variant(src: Path, dst: Path, vf: str, crf: int) -> None:
    if dst.exists() and dst.stat().st_size > 0:
        return
    tmp = dst.with_suffix(".part.mp4")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-t", str(CAP_S), "-i", str(src), "-vf", vf, "-an", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", str(tmp)],
                   check=True)
    tmp.replace(dst)


def load_frames(corpus: Path, cache: Path) -> dict[str, np.ndarray | list]:
    groups = {row.split("\t")[0]: row.split("\t")[9] for row in
              (corpus / "MANIFEST.tsv").read_text().splitlines()[1:] if row.strip()}
    cols: dict[str, list] = {k: [] for k in ("vid", "group", "kind", "t", "pixels")}
    for vid, name in enumerate(VIDEOS):
        src = corpus / name
        sources = {"orig": src}
        for kind, (vf, crf) in VARIANTS.items():
            sources[kind] = cache / f"{name.replace('/', '__')}.{kind}.mp4"
            make_variant(src, sources[kind], vf, crf)
        for kind, path in sources.items():
            for kf in extract(path, SETTINGS):
                for key, val in (("vid", vid), ("group", groups[name]), ("kind", kind),
                                 ("t", kf.t), ("pixels", kf.pixels)):
                    cols[key].append(val)
    return {k: (v if k == "pixels" else np.array(v)) for k, v in cols.items()}


def neg_stats(d: np.ndarray, bits: int) -> dict:
    if d.size == 0:
        return {"n": 0}
    q = np.quantile(d, [1e-4, 1e-3], method="lower")
    return {"n": int(d.size), "min": int(d.min()), "q0.01%": int(q[0]), "q0.1%": int(q[1]),
            "min_frac": round(int(d.min()) / bits, 3)}


def threshold(neg: np.ndarray, bits: int, max_fp_rate: float) -> int:
    """Largest t such that the share of negatives with d <= t is <= max_fp_rate (-1: none)."""
    cdf = np.cumsum(np.bincount(neg, minlength=bits + 1))
    ok = np.nonzero(cdf <= np.floor(max_fp_rate * neg.size))[0]
    return int(ok.max()) if ok.size else -1


def evaluate(algo: str, fr: dict) -> dict:
    hasher = HASHERS[algo]
    start = time.perf_counter()
    hashes = hasher.hash_many(fr["pixels"])
    ms = 1000 * (time.perf_counter() - start) / len(fr["pixels"])
    o = np.nonzero(fr["kind"] == "orig")[0]
    v = np.nonzero(fr["kind"] != "orig")[0]
    dist = hamming(hashes[o], hashes[v])  # (n_orig, n_variant)
    same = fr["vid"][o][:, None] == fr["vid"][v][None, :]
    dt = np.abs(fr["t"][o][:, None] - fr["t"][v][None, :])
    cross = fr["group"][o][:, None] != fr["group"][v][None, :]
    asl = np.char.startswith(fr["group"].astype(str), "intel-asl")
    look = cross & asl[o][:, None] & asl[v][None, :]
    unrelated = cross & ~look
    far = same & (dt >= FAR_DT)
    # True pairs: per variant frame, the nearest-in-time original frame of the same video.
    dt_same = np.where(same, dt, np.inf)
    nearest = dt_same.argmin(axis=0)
    cols = np.nonzero(dt_same[nearest, np.arange(v.size)] <= PAIR_DT)[0]
    true_d = dist[nearest[cols], cols]
    true_kind = fr["kind"][v][cols]
    all_neg = dist[cross | far]
    thr0 = threshold(all_neg, hasher.bits, 0.0)
    thr4 = threshold(all_neg, hasher.bits, 1e-4)
    thr0x = threshold(dist[cross], hasher.bits, 0.0)
    thr4x = threshold(dist[cross], hasher.bits, 1e-4)
    res = {"bits": hasher.bits, "ms_per_frame": round(ms, 3), "n_frames": len(fr["pixels"]),
           "thr_zero_fp": thr0, "thr_fp_1e-4": thr4, "thr_zero_fp_cross": thr0x,
           "thr_fp_1e-4_cross": thr4x, "rows": {}}
    for kind in [*VARIANTS, "ALL"]:
        colmask = np.ones(v.size, bool) if kind == "ALL" else fr["kind"][v] == kind
        td = true_d if kind == "ALL" else true_d[true_kind == kind]
        med, p95 = np.percentile(td, [50, 95])
        res["rows"][kind] = {
            "true": {"n": int(td.size), "median": float(med), "p95": float(p95),
                     "median_frac": round(med / hasher.bits, 3), "p95_frac": round(p95 / hasher.bits, 3)},
            "neg_unrelated": neg_stats(dist[unrelated & colmask], hasher.bits),
            "neg_lookalike": neg_stats(dist[look & colmask], hasher.bits),
            "neg_same_far": neg_stats(dist[far & colmask], hasher.bits),
            "recall_zero_fp": round(float(np.mean(td <= thr0)), 4),
            "recall_fp_1e-4": round(float(np.mean(td <= thr4)), 4),
            "recall_zero_fp_cross": round(float(np.mean(td <= thr0x)), 4),
            "recall_fp_1e-4_cross": round(float(np.mean(td <= thr4x)), 4),
        }
    return res


def fmt_neg(s: dict) -> str:
    return f"{s['min']:>3}/{s['q0.01%']:>3}/{s['q0.1%']:>3}" if s.get("n") else "  -"


def print_table(results: dict) -> None:
    for algo, r in results.items():
        print(f"\n{algo} ({r['bits']} bits)  hash {r['ms_per_frame']:.3f} ms/frame over "
              f"{r['n_frames']} frames | match if d <= thr; thr zero-FP/FP1e-4: all negatives "
              f"{r['thr_zero_fp']}/{r['thr_fp_1e-4']}, cross-video {r['thr_zero_fp_cross']}/"
              f"{r['thr_fp_1e-4_cross']}")
        print(f"{'variant':<14}{'n':>5} {'med':>5} {'p95':>5} {'med/b':>6} {'p95/b':>6} | "
              f"{'unrelated':>11} {'lookalike':>11} {'same>=3s':>11} | "
              f"{'R@0FP':>6} {'R@1e-4':>6} {'R@0FPx':>6} {'R@1e-4x':>7}")
        for kind, row in r["rows"].items():
            t = row["true"]
            print(f"{kind:<14}{t['n']:>5} {t['median']:>5.1f} {t['p95']:>5.1f} "
                  f"{t['median_frac']:>6.3f} {t['p95_frac']:>6.3f} | "
                  f"{fmt_neg(row['neg_unrelated']):>11} {fmt_neg(row['neg_lookalike']):>11} "
                  f"{fmt_neg(row['neg_same_far']):>11} | {row['recall_zero_fp']:>6.3f} "
                  f"{row['recall_fp_1e-4']:>6.3f} {row['recall_zero_fp_cross']:>6.3f} "
                  f"{row['recall_fp_1e-4_cross']:>7.3f}")
        n = r["rows"]["ALL"]
        print(f"negative pairs (min/0.01%/0.1%): unrelated {n['neg_unrelated']['n']}, lookalike "
              f"{n['neg_lookalike']['n']}, same>=3s {n['neg_same_far']['n']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--cache", type=Path,
                    default=Path.home() / ".cache" / "provenance-bench" / "hash_compare")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    frames = load_frames(args.corpus.resolve(), args.cache)
    print(f"{len(VIDEOS)} videos, {len(frames['pixels'])} keyframes "
          f"({np.sum(frames['kind'] == 'orig')} original) in {time.perf_counter() - start:.0f} s")
    results = {algo: evaluate(algo, frames) for algo in HASHERS}
    print_table(results)
    out = args.cache.parent / "hash_compare.json"
    out.write_text(json.dumps({"videos": VIDEOS, "variants": VARIANTS, "cap_s": CAP_S,
                               "results": results}, indent=2))
    print(f"\nwrote {out} ({time.perf_counter() - start:.0f} s total)")


if __name__ == "__main__":
    main()
