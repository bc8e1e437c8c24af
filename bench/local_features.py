"""Would local features find the copies PDQ cannot, without a false alarm?

The two edits the product still misses as a rule are the 60 % crop off the centre
and the six stickers (bench/README.md): neither leaves a stored view's picture
whole, and PDQ forgives about 1 % of shift. Keypoints do not care where the
picture was cut. The risk is the look-alikes: the 20 intel-asl clips are one
signer, in one office, in the same clothes.

What it measures: SIFT keypoints (800 a frame, Lowe's ratio 0.75) matched between
a query's frames and a candidate clip's frames, inliers of a RANSAC similarity
(4 px); a query's score against a clip is the median over the query's frames of
the best inlier count over the clip's frames. For the two edits of the 10
indexed signer clips, the score against the right clip and against each of the
other 19 (the benchmark's 10 look-alikes and the 9 other indexed signers); for
the same edits of the 15 other references, the score against the right clip.
Then the zero-false-alarm rule an inlier count allows: a threshold above every
wrong score, and how many right ones clear it. Frames: 4 a second for the signer
clips (2-5 s long), 1 a second for the others (their first 30 s).

It reads the variants ``bench/accuracy.py`` made (run that first) and the corpus.
Run:  .venv/bin/python bench/local_features.py [--corpus DIR] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import variants as V  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EDITS = ["crop60_offcentre", "stickers"]
SIGNERS = sorted([ref for ref, _ in V.REFERENCES if ref.startswith("asl-")]
                 + [f"asl-{word}" for word in V.ASL_NOT_INDEXED])
FEATURES, RATIO, RANSAC_PX = 800, 0.75, 4.0

sift = cv2.SIFT_create(nfeatures=FEATURES)
matcher = cv2.BFMatcher(cv2.NORM_L2)


def keypoints(path: Path, per_second: float) -> list[tuple]:
    capture = cv2.VideoCapture(str(path))
    rate = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step, out, index = max(1, round(rate / per_second)), [], 0
    while index < rate * V.CAP_S:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            points, descriptors = sift.detectAndCompute(grey, None)
            if descriptors is not None and len(points) >= 4:
                out.append((np.float32([p.pt for p in points]), descriptors))
        index += 1
    return out


def inliers(query: tuple, candidate: tuple) -> int:
    pairs = [m[0] for m in matcher.knnMatch(query[1], candidate[1], k=2)
             if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(pairs) < 4:
        return 0
    src = query[0][[m.queryIdx for m in pairs]]
    dst = candidate[0][[m.trainIdx for m in pairs]]
    _, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                          ransacReprojThreshold=RANSAC_PX)
    return int(mask.sum()) if mask is not None else 0


def score(query: list[tuple], candidate: list[tuple]) -> float:
    return float(np.median([max(inliers(q, c) for c in candidate) for q in query]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "provenance-bench" / "accuracy")
    args = parser.parse_args()
    source = dict(V.REFERENCES)
    signer_clips = {name: keypoints(args.corpus / "intel-asl" / f"{name}.mkv", 4.0)
                    for name in SIGNERS}
    rows = []
    for ref in source:
        signer = ref in signer_clips
        if not signer:
            own = keypoints(args.corpus / source[ref], 1.0)
        for edit in EDITS:
            found = sorted((args.cache / "variants" / ref).glob(f"{edit}-*"))
            if not found:
                raise SystemExit(f"no {edit} copy of {ref} in {args.cache}: run bench/accuracy.py")
            query = keypoints(found[0], 4.0 if signer else 1.0)
            if signer:
                scores = {name: score(query, clip) for name, clip in signer_clips.items()}
                wrong = max((s, name) for name, s in scores.items() if name != ref)
                row = dict(ref=ref, edit=edit, right=scores[ref], wrong=wrong[0], wrong_clip=wrong[1])
            else:
                row = dict(ref=ref, edit=edit, right=score(query, own), wrong=None, wrong_clip=None)
            rows.append(row)
            print(f"{ref:10} {edit:17} right {row['right']:6.1f}" + (
                f"   best other signer {row['wrong']:6.1f} ({row['wrong_clip']})" if signer else ""),
                flush=True)
    ceiling = max(r["wrong"] for r in rows if r["wrong"] is not None)
    print(f"\nhighest wrong score (a signer's copy against another signer clip): {ceiling:.1f}")
    for edit in EDITS:
        for label, signer in (("signer clips", True), ("other footage", False)):
            part = [r for r in rows if r["edit"] == edit and (r["wrong"] is not None) == signer]
            cleared = sum(r["right"] > ceiling for r in part)
            print(f"{edit:17} {label:13}: {cleared} of {len(part)} right scores above it "
                  f"(right scores {min(r['right'] for r in part):.1f}-"
                  f"{max(r['right'] for r in part):.1f})")
    out = args.cache / "results" / "local_features.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(rows=rows, highest_wrong=ceiling), indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
