"""Accuracy benchmark (issue 3): does ``provenance check`` list the right video, and
only it, for edited copies of indexed footage, with the matched segment right?

What it does, in one run:
1. indexes 25 reference clips of the shared corpus (15 groups + 10 intel-asl
   look-alikes; long clips cut to their first 30 s into the cache);
2. makes query variants with ffmpeg in 7 families (encode, photometric, overlay,
   geometry, temporal, composite, combo), plus the corpus's own natural reposts,
   each with its ground truth (reference id, reference segment, query segment),
   and 130 negatives: never-indexed footage edited like a repost (the 10 ASL
   look-alikes not indexed, later parts of the long shots whose start is
   indexed, groups never indexed); and the look-alike split reversed: every
   variant of the 10 indexed ASL clips checked against a second index of the
   10 others (the ``asl_heldout`` negatives);
3. runs the product in-process (``pipeline.check``) at its own decision threshold;
4. runs two anchors on the same files: vPDQ (python-threatexchange's rule) and a
   plain pHash at 1 frame/s calibrated to zero false positives on the negatives;
5. prints one table (per transform, per family, overall; negatives), the failures
   of the product, and writes every query's outcome as JSON into the cache.

Run:  make bench-accuracy [BENCH_ARGS=--quick]
      .venv/bin/python bench/accuracy.py [--quick] [--cache DIR] [--jobs N] [--no-anchors]
Cache (default ~/.cache/provenance-bench/accuracy, reused across runs): cut references
and variants keyed by their generation parameters; anchor hashes keyed by file; the
product's index and per-query results keyed by its settings, version and the hash of
its sources (a matcher change re-runs the checks, not the variant generation).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anchors  # noqa: E402
import variants as V  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path("/work/shared/corpus")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
    / "provenance-bench" / "accuracy"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- generation

def run_jobs(jobs: list[V.Job], workers: int, what: str) -> dict[str, str]:
    """Render missing outputs in a process pool; returns {out: error} for failures."""
    todo = [j for j in jobs if not (Path(j.out).is_file() and Path(j.out).stat().st_size > 0)]
    errors: dict[str, str] = {}
    if not todo:
        log(f"{what}: all {len(jobs)} cached")
        return errors
    log(f"{what}: {len(todo)} to make ({len(jobs) - len(todo)} cached), {workers} workers")
    t0, done = time.perf_counter(), 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for out, _, err in pool.map(V.render, todo, chunksize=1):
            done += 1
            if err:
                errors[out] = err
                log(f"  ffmpeg failed: {Path(out).name}: {err}")
            if done % 50 == 0:
                log(f"  {done}/{len(todo)}  {time.perf_counter() - t0:.0f} s")
    log(f"{what}: done in {time.perf_counter() - t0:.0f} s")
    return errors


def check_durations(queries: list[V.Query], cache: Path) -> None:
    """Warn where a generated query is not as long as its ground truth says."""
    path = cache / "durations.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    bad = []
    for q in queries:
        want = q.extra.get("expected_duration")
        if want is None:
            continue
        k = file_key(q.path)
        if k not in known:
            known[k] = V.probe(q.path)[2]
        if abs(known[k] - want) > max(0.5, 0.1 * want):
            bad.append(f"  {q.id}: {known[k]:.2f} s, ground truth assumes {want:.2f} s")
    _save(path, known)
    if bad:
        log("WARNING: query durations differ from their ground truth:\n" + "\n".join(bad))


def prune(cache: Path, keep: set[str]) -> None:
    freed, n = 0, 0
    for sub in ("variants", "refs"):
        for p in (cache / sub).rglob("*"):
            if p.is_file() and str(p) not in keep:
                freed += p.stat().st_size
                n += 1
                p.unlink()
    log(f"prune: removed {n} stale files ({freed / 1e6:.0f} MB)")


def file_key(path: str) -> str:
    st = Path(path).stat()
    return hashlib.sha1(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()) \
        .hexdigest()[:16]


# --------------------------------------------------------------------------- the product

def product_settings(pdir: Path):
    from provenance.config import load_settings

    return load_settings(db_path=pdir / "index.db", cache_dir=pdir / "fetch-cache")


def product_key() -> tuple[str, dict]:
    import provenance
    from provenance.config import load_settings

    settings = load_settings()
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
              if f.name not in ("db_path", "cache_dir", "quiet")}
    src = hashlib.sha1()
    pkg = Path(provenance.__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        src.update(str(p.relative_to(pkg)).encode() + b"\0" + p.read_bytes() + b"\0")
    ident = {"settings": values, "version": provenance.__version__,
             "sources": src.hexdigest()[:16]}
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()) \
        .hexdigest()[:12], ident


def run_product(refs: dict[str, V.Ref], heldout: dict[str, V.Ref], queries: list[V.Query],
                cache: Path) -> tuple[dict, dict]:
    key, ident = product_key()  # before importing the pipeline: the code that runs is hashed
    from provenance import pipeline

    pdir = cache / "product" / key
    pdir.mkdir(parents=True, exist_ok=True)
    settings = product_settings(pdir)
    (pdir / "product.json").write_text(json.dumps(ident, indent=2, default=str))
    results_path = pdir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    by_source = {str(Path(r.media.path).resolve()): r.id
                 for r in (*refs.values(), *heldout.values())}
    info = {"key": key, **ident, "threshold": settings.match_score_threshold,
            "index_seconds": 0.0}
    log(f"product: key {key} ({pdir})")
    heldout_settings = dataclasses.replace(settings, db_path=pdir / "heldout.db")
    with pipeline.default_index(settings) as index, \
            pipeline.default_index(heldout_settings) as heldout_index:
        for r in heldout.values():
            pipeline.add(r.media.path, heldout_index, heldout_settings)
        t0 = time.perf_counter()
        added = 0
        for r in refs.values():
            out = pipeline.add(r.media.path, index, settings)
            added += out.status == "added"
        info["index_seconds"] = round(time.perf_counter() - t0, 2)
        info["index_stats"] = index.stats()
        log(f"product: index has {len(refs)} references ({added} added now, "
            f"{info['index_seconds']} s)")
        todo = [q for q in queries if qkey(q) not in results]
        log(f"product: {len(todo)} checks to run ({len(queries) - len(todo)} cached)")
        t_start = time.perf_counter()
        for i, q in enumerate(todo, 1):
            t1 = time.perf_counter()
            rec: dict = {"matches": [], "error": None}
            try:
                against = heldout_index if q.extra.get("against") == "heldout" else index
                report = pipeline.check(q.path, against, settings)
                for m in report.matches:
                    src = str(Path(m.video.source).resolve()) if m.video.source else ""
                    rec["matches"].append({
                        "ref": by_source.get(src, src or f"video#{m.video.id}"),
                        "score": m.score, "seg": list(m.reference_segment),
                        "qseg": list(m.query_segment), "mirrored": m.alignment.mirrored,
                        "speed": m.alignment.speed, "frames": m.matched_frames,
                        "distance": m.mean_distance,
                        "relations": [r.kind for r in m.relations]})
            except Exception as exc:  # the product refusing a query is a miss, recorded
                rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
            rec["seconds"] = round(time.perf_counter() - t1, 4)
            results[qkey(q)] = rec
            if i % 25 == 0 or i == len(todo):
                _save(results_path, results)
                el = time.perf_counter() - t_start
                log(f"  {i}/{len(todo)} checks, {el:.0f} s, ~{el / i * (len(todo) - i):.0f} s left")
    return {q.id: results[qkey(q)] for q in queries}, info


def qkey(q: V.Query) -> str:
    return f"{q.id}|{file_key(q.path)}"


def _save(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


# --------------------------------------------------------------------------- anchors

def run_anchors(refs: dict[str, V.Ref], heldout: dict[str, V.Ref], queries: list[V.Query],
                cache: Path, workers: int, with_vpdq: bool) -> tuple[dict, dict, dict]:
    files = {r.id: r.media.path for r in (*refs.values(), *heldout.values())}
    files.update({q.id: q.path for q in queries})
    keys = {name: file_key(p) for name, p in files.items()}
    hashed: dict[str, tuple] = {}
    todo = []
    for name, path in files.items():
        k = keys[name]
        ph = anchors._cache_file(cache, "phash", k)
        vp = anchors._cache_file(cache, "vpdq", k)
        if ph.is_file() and (not with_vpdq or vp.is_file()):
            hashed[k] = (json.loads(ph.read_text()),
                         json.loads(vp.read_text()) if with_vpdq else None)
        else:
            todo.append((path, k))
    log(f"anchors: {len(todo)} files to hash ({len(files) - len(todo)} cached), "
        f"{workers} workers{'' if with_vpdq else ' (pHash only)'}")
    t0 = time.perf_counter()
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = [pool.submit(anchors.hash_both, p, k, str(cache), with_vpdq) for p, k in todo]
            for i, f in enumerate(as_completed(futs), 1):
                k, ph, vp = f.result()
                hashed[k] = (ph, vp)
                if i % 100 == 0:
                    log(f"  {i}/{len(todo)}  {time.perf_counter() - t0:.0f} s")
        log(f"anchors: hashed in {time.perf_counter() - t0:.0f} s")
    ph_refs, vp_refs = {}, {}
    for against, which in (("index", refs), ("heldout", heldout)):
        ph_refs[against] = anchors.PhashRefs({r: hashed[keys[r]][0] for r in which})
        vp_refs[against] = anchors.VpdqRefs({r: hashed[keys[r]][1] for r in which}) \
            if with_vpdq else None
    vp_out, ph_out = {}, {}
    for q in queries:
        ph, vp = hashed[keys[q.id]]
        against = q.extra.get("against", "index")
        t1 = time.perf_counter()
        near = ph_refs[against].nearest(ph)
        ph_out[q.id] = {"nearest": near, "n": len(ph["hashes"]), "error": ph["error"],
                        "seconds": ph["seconds"] + time.perf_counter() - t1}
        if with_vpdq:
            t1 = time.perf_counter()
            scores = vp_refs[against].match(vp)
            vp_out[q.id] = {"scores": scores, "error": vp["error"],
                            "seconds": vp["seconds"] + time.perf_counter() - t1}
    ref_cost = {"phash_ref_seconds": sum(hashed[keys[r]][0]["seconds"] for r in refs)}
    if with_vpdq:
        ref_cost["vpdq_ref_seconds"] = sum(hashed[keys[r]][1]["seconds"] for r in refs)
    return vp_out, ph_out, ref_cost


def calibrate_phash(ph_out: dict, queries: list[V.Query]) -> tuple[int, int, dict]:
    """Largest T with no listing on any negative, for N = 1..3; N with the best recall."""
    negs = [q for q in queries if not q.positive]
    poss = [q for q in queries if q.positive]
    table = {}
    for n in (1, 2, 3):
        best_t = -1
        for t in range(0, 33):
            if any(anchors.phash_listed(ph_out[q.id]["nearest"], ph_out[q.id]["n"], t, n)
                   for q in negs):
                break
            best_t = t
        recall = sum(any(h["ref"] == q.ref for h in anchors.phash_listed(
            ph_out[q.id]["nearest"], ph_out[q.id]["n"], best_t, n)) for q in poss)
        table[n] = {"T": best_t, "recall": recall / max(len(poss), 1)}
    n = max(table, key=lambda k: (table[k]["recall"], -k))
    return n, table[n]["T"], table


# --------------------------------------------------------------------------- scoring

def iou(a, b) -> float:
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(inter == 0 and a == b)


def outcome(q: V.Query, listed: list[dict], seconds: float, error: str | None) -> dict:
    refs = [h["ref"] for h in listed]
    o = {"listed": refs, "seconds": seconds, "error": error}
    if q.positive:
        hit = next((h for h in listed if h["ref"] == q.ref), None)
        o.update(hit=hit is not None, top1=bool(refs) and refs[0] == q.ref,
                 wrong=[r for r in refs if r != q.ref],
                 iou=iou(tuple(hit["seg"]), q.ref_seg) if hit and hit.get("seg") else None,
                 qiou=iou(tuple(hit["qseg"]), q.query_seg) if hit and hit.get("qseg") else None)
    else:
        o.update(wrong=refs)
    return o


def summarize(outs: list[dict], positive: bool) -> dict:
    n = len(outs)
    secs = [o["seconds"] for o in outs]
    s = {"n": n, "fp": sum(bool(o["wrong"]) for o in outs),
         "s_per_q": statistics.median(secs) if secs else None}
    if positive:
        ious = [o["iou"] for o in outs if o["iou"] is not None]
        qious = [o["qiou"] for o in outs if o.get("qiou") is not None]
        s.update(recall=sum(o["hit"] for o in outs) / n if n else None,
                 r1=sum(o["top1"] for o in outs) / n if n else None,
                 iou=statistics.median(ious) if ious else None,
                 qiou=statistics.median(qious) if qious else None)
    return s


def pct(x) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}"


def f2(x) -> str:
    return "   -" if x is None else f"{x:4.2f}"


def render_table(tools: list[str], rows: list[tuple[str, str, dict]], neg_rows, names) -> str:
    head1 = f"{'':24}{'':>4} |"
    head2 = f"{'transform':24}{'n':>4} |"
    for t in tools:
        w = 36 if t == "provenance" else 28
        head1 += f" {names[t]:<{w - 1}}|"
        head2 += (" rec  R@1  FP rIoU qIoU  s/q |" if t == "provenance"
                  else " rec  R@1  FP rIoU  s/q |")
    lines = [head1, head2, "-" * len(head2)]
    for label, kind, per in rows:
        if kind == "sep":
            lines.append("-" * len(head2))
            continue
        n = per[tools[0]]["n"]
        line = f"{label:24}{n:4d} |"
        for t in tools:
            s = per[t]
            line += f" {pct(s['recall'])} {pct(s['r1'])} {s['fp']:3d} {f2(s['iou'])}"
            if t == "provenance":
                line += f" {f2(s['qiou'])}"
            line += f" {f2(s['s_per_q'])} |"
        lines.append(line)
    lines.append("-" * len(head2))
    lines.append(f"{'NEGATIVES':24}{'n':>4} |" + "".join(
        f" {'queries listing anything':<{(36 if t == 'provenance' else 28) - 1}}|" for t in tools))
    for label, per in neg_rows:
        n = per[tools[0]]["n"]
        line = f"{label:24}{n:4d} |"
        for t in tools:
            s = per[t]
            w = 36 if t == "provenance" else 28
            cell = f" FP {s['fp']:3d} ({100 * s['fp'] / max(n, 1):4.1f} %)  s/q {f2(s['s_per_q'])}"
            line += f"{cell:<{w}}|"
        lines.append(line)
    return "\n".join(lines)


def markdown_table(tools, rows, neg_rows, names) -> str:
    cols = ["transform", "n"]
    for t in tools:
        short = {"provenance": "prov", "vpdq": "vPDQ", "phash": "pHash"}[t]
        cols += [f"{short} rec", f"{short} R@1", f"{short} FP", f"{short} rIoU"]
        if t == "provenance":
            cols += ["prov s/q"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for label, kind, per in rows:
        if kind == "sep":
            continue
        cells = [f"**{label}**" if kind != "transform" else label, str(per[tools[0]]["n"])]
        for t in tools:
            s = per[t]
            cells += [pct(s["recall"]).strip() + "%", pct(s["r1"]).strip() + "%", str(s["fp"]),
                      f2(s["iou"]).strip()]
            if t == "provenance":
                cells += [f2(s["s_per_q"]).strip()]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "| negatives | n | " + " | ".join(f"{names[t]} FP" for t in tools) + " |",
            "|---|---|" + "---|" * len(tools)]
    for label, per in neg_rows:
        out.append(f"| {label} | {per[tools[0]]['n']} | " + " | ".join(
            f"{per[t]['fp']} ({100 * per[t]['fp'] / max(per[t]['n'], 1):.1f} %)" for t in tools)
            + " |")
    return "\n".join(out)


def failures(queries: list[V.Query], outs: dict[str, dict], prod: dict[str, dict]) -> list[str]:
    by_t: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        o = outs[q.id]
        bad = o["wrong"] or (q.positive and (not o["hit"] or not o["top1"]
                                             or (o["iou"] is not None and o["iou"] < 0.5)))
        if not bad:
            continue
        got = "; ".join(f"{m['ref']} {m['score']:.2f} ref {m['seg'][0]:.1f}-{m['seg'][1]:.1f}"
                        f" q {m['qseg'][0]:.1f}-{m['qseg'][1]:.1f}"
                        for m in prod[q.id]["matches"]) or "nothing"
        if prod[q.id]["error"]:
            got += f"  [error: {prod[q.id]['error'][:120]}]"
        if q.positive:
            why = ("missed" if not o["hit"] else "wrong video listed" if o["wrong"] and not
                   o["top1"] else "wrong video also listed" if o["wrong"] else
                   f"segment IoU {o['iou']:.2f}")
            exp = (f"{q.ref} ref {q.ref_seg[0]:.1f}-{q.ref_seg[1]:.1f}"
                   f" q {q.query_seg[0]:.1f}-{q.query_seg[1]:.1f}")
        else:
            why, exp = "negative listed", "nothing"
        by_t[q.transform].append(f"    {q.id:42} {why:24} expected {exp}  got {got}")
    lines = []
    for t in list(V.TRANSFORMS) + ["natural"] + sorted(k for k in by_t if k.startswith("neg:")):
        if by_t.get(t):
            lines.append(f"  {t} ({len(by_t[t])})")
            lines += by_t[t]
    return lines


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"queries of {len(V.QUICK_REFS)} short references and one edit per "
                         "negative source (full index)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="worker processes for ffmpeg and anchor hashing")
    ap.add_argument("--no-anchors", action="store_true", help="product only")
    ap.add_argument("--no-vpdq", action="store_true", help="skip the vPDQ anchor")
    ap.add_argument("--only", default="", help="comma-separated families or transforms")
    ap.add_argument("--prune", action="store_true",
                    help="delete cached cuts and variants that the full plan no longer uses")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    cache = args.cache.expanduser().resolve()
    if cache.is_relative_to(ROOT):
        ap.error("the cache must be outside the repository (it holds corpus footage)")
    corpus = args.corpus.resolve()
    if not (corpus / "MANIFEST.tsv").is_file():
        ap.error(f"{corpus}: no MANIFEST.tsv (the shared corpus)")
    cache.mkdir(parents=True, exist_ok=True)
    log(f"cache {cache}; drawtext font: {V.FONT or 'none (bars instead of text)'}")

    # 1. references
    groups = V.manifest_groups(corpus)
    ref_plan, cut_jobs = V.plan_references(corpus, cache)
    errs = run_jobs(cut_jobs, args.jobs, "reference cuts")
    if errs:
        log("cannot cut references; stopping")
        return 2
    refs: dict[str, V.Ref] = {}
    for ref_id, rel, path in ref_plan:
        w, h, d = V.probe(path)
        key = f"corpus:{rel}" if path.startswith(str(corpus)) else f"cut:{Path(path).name}"
        refs[ref_id] = V.Ref(ref_id, groups[rel], rel, V.Media(path, key, w, h, d))

    heldout = {ref_id: V.Ref(ref_id, groups[rel], rel, V.corpus_media(corpus, rel))
               for ref_id, rel in V.HELDOUT_REFERENCES}

    # 2. queries
    queries = V.plan_queries(corpus, cache, refs)
    if args.prune:
        prune(cache, {q.path for q in queries} | {r.media.path for r in refs.values()})
    if args.quick:
        queries = [q for q in queries if q.quick]
    if args.only:
        keep = set(args.only.split(","))
        queries = [q for q in queries if q.family in keep or q.transform in keep
                   or (not q.positive and "negative" in keep)]
    # A held-out negative is its positive twin's file: one job for both.
    jobs = {q.job.out: q.job for q in queries if q.job}
    gen_errors = run_jobs(list(jobs.values()), args.jobs, "query variants")
    dropped = [q for q in queries if q.path in gen_errors]
    queries = [q for q in queries if q.path not in gen_errors]
    check_durations(queries, cache)
    n_pos = sum(q.positive for q in queries)
    log(f"{len(queries)} queries: {n_pos} positives, {len(queries) - n_pos} negatives"
        + (f" ({len(dropped)} dropped: ffmpeg failed)" if dropped else ""))

    # 3. product
    t_prod = time.perf_counter()
    prod, pinfo = run_product(refs, heldout, queries, cache)
    t_prod = time.perf_counter() - t_prod

    # 4. anchors
    tools = ["provenance"]
    names = {"provenance": f"provenance (score >= {pinfo['threshold']})"}
    vp_out = ph_out = {}
    anchor_info: dict = {}
    vpdq_why = None
    if not args.no_anchors:
        vpdq_why = "skipped (--no-vpdq)" if args.no_vpdq else anchors.vpdq_available()
        if vpdq_why:
            log(f"vPDQ anchor not run: {vpdq_why}")
        vp_out, ph_out, anchor_info = run_anchors(refs, heldout, queries, cache, args.jobs,
                                                  vpdq_why is None)
        if vpdq_why is None:
            tools.append("vpdq")
            names["vpdq"] = f"vPDQ ({anchors.HEADLINE_RULE} %)"
        n_frames, t_bits, calib = calibrate_phash(ph_out, queries)
        anchor_info["phash_rule"] = {"N": n_frames, "T": t_bits, "calibration": calib}
        tools.append("phash")
        names["phash"] = f"pHash 1fps (>={n_frames} fr <={t_bits} bit)"

    # 5. score
    outs: dict[str, dict[str, dict]] = {t: {} for t in tools}
    for q in queries:
        p = prod[q.id]
        outs["provenance"][q.id] = outcome(q, p["matches"], p["seconds"], p["error"])
        if "vpdq" in tools:
            v = vp_out[q.id]
            outs["vpdq"][q.id] = outcome(q, anchors.vpdq_listed(v["scores"], anchors.HEADLINE_RULE),
                                         v["seconds"], v["error"])
        if "phash" in tools:
            ph = ph_out[q.id]
            outs["phash"][q.id] = outcome(q, anchors.phash_listed(
                ph["nearest"], ph["n"], t_bits, n_frames), ph["seconds"], ph["error"])
    pos = [q for q in queries if q.positive]
    neg = [q for q in queries if not q.positive]
    rows = []
    for fam in V.FAMILIES:
        fq = [q for q in pos if q.family == fam]
        if not fq:
            continue
        for t in dict.fromkeys(q.transform for q in fq):
            tq = [q for q in fq if q.transform == t]
            rows.append((t, "transform", {k: summarize([outs[k][q.id] for q in tq], True)
                                          for k in tools}))
        rows.append((f"= {fam}", "family", {k: summarize([outs[k][q.id] for q in fq], True)
                                            for k in tools}))
        rows.append(("", "sep", {}))
    rows.append(("ALL POSITIVES", "overall", {k: summarize([outs[k][q.id] for q in pos], True)
                                              for k in tools}))
    neg_rows = []
    for kind in dict.fromkeys(q.negative_kind for q in neg):
        kq = [q for q in neg if q.negative_kind == kind]
        neg_rows.append((kind, {k: summarize([outs[k][q.id] for q in kq], False) for k in tools}))
    neg_rows.append(("ALL NEGATIVES", {k: summarize([outs[k][q.id] for q in neg], False)
                                       for k in tools}))

    table = render_table(tools, rows, neg_rows, names)
    fails = failures(queries, outs["provenance"], prod)
    # A subset (--only) never replaces the latest full or quick results.
    mode = "only" if args.only else "quick" if args.quick else "full"
    total = time.perf_counter() - t_all
    print()
    print(f"provenance accuracy benchmark ({mode}{': ' + args.only if args.only else ''}): "
          f"{len(refs)} references indexed (and {len(heldout)} look-alikes in a held-out index), "
          f"{len(pos)} positive and {len(neg)} negative queries")
    print(f"product {pinfo['version']} key {pinfo['key']} (sources {pinfo['sources']}), "
          f"{pinfo['settings']['hash_algorithm']}, threshold {pinfo['threshold']}")
    print("rec = right video listed; R@1 = right video first; FP = queries listing a wrong "
          "video; rIoU/qIoU = median IoU of the\nreported reference/query segment with the "
          "truth (positives where the right video is listed); s/q = median seconds per query\n")
    print(table)
    if "vpdq" in tools:
        alt = []
        for rule in anchors.RULES:
            o = [outcome(q, anchors.vpdq_listed(vp_out[q.id]["scores"], rule), 0, None)
                 for q in queries]
            po = [x for x, q in zip(o, queries) if q.positive]
            no = [x for x, q in zip(o, queries) if not q.positive]
            alt.append(f"  vPDQ {rule:13} recall {100 * sum(x['hit'] for x in po) / len(po):5.1f} %"
                       f"  R@1 {100 * sum(x['top1'] for x in po) / len(po):5.1f} %"
                       f"  FP on positives {sum(bool(x['wrong']) for x in po)}"
                       f"  FP on negatives {sum(bool(x['wrong']) for x in no)}/{len(no)}")
        print("\nvPDQ decision rules (frame distance <= 31, quality >= 50):")
        print("\n".join(alt))
    if "phash" in tools:
        cal = anchor_info["phash_rule"]["calibration"]
        print("\npHash calibration (largest T listing nothing on the negatives, per N): "
              + ", ".join(f"N={n}: T={c['T']} recall {100 * c['recall']:.1f} %"
                          for n, c in cal.items()))
    if vpdq_why:
        print(f"\nvPDQ anchor not run: {vpdq_why}")
    print(f"\nindexing: product {pinfo['index_seconds']} s for {len(refs)} references"
          + (f"; vPDQ {anchor_info.get('vpdq_ref_seconds', 0):.1f} s, pHash "
             f"{anchor_info.get('phash_ref_seconds', 0):.1f} s (1 thread each)"
             if anchor_info else ""))
    print(f"product checks this run: {t_prod:.0f} s; whole run {total:.0f} s")
    print(f"\nproduct failures ({sum(1 for ln in fails if ln.startswith('    '))}), "
          "by transform:")
    print("\n".join(fails) if fails else "  none")

    # 6. JSON
    rdir = cache / "results"
    rdir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = {
        "mode": mode, "only": args.only or None, "created": stamp, "seconds": round(total, 1),
        "product": pinfo, "anchors": {**anchor_info, "vpdq": vpdq_why or "ran",
                                      "vpdq_rule": anchors.RULES[anchors.HEADLINE_RULE]},
        "references": {r.id: {"corpus_file": r.corpus_file, "group": r.group,
                              "indexed_file": r.media.path, "duration": r.media.duration,
                              "size": [r.media.width, r.media.height]} for r in refs.values()},
        "heldout_references": {r.id: r.corpus_file for r in heldout.values()},
        "summary": {"rows": [(lbl, kind, per) for lbl, kind, per in rows if kind != "sep"],
                    "negatives": neg_rows},
        "dropped": [{"id": q.id, "error": gen_errors[q.path]} for q in dropped],
        "queries": [{
            "id": q.id, "family": q.family, "transform": q.transform, "file": q.path,
            "source": q.source, "positive": q.positive, "ref": q.ref,
            "ref_segment": q.ref_seg, "query_segment": q.query_seg,
            "negative_kind": q.negative_kind,
            "provenance": {**outs["provenance"][q.id], "matches": prod[q.id]["matches"]},
            **({"vpdq": {**outs["vpdq"][q.id], "scores": vp_out[q.id]["scores"]}}
               if "vpdq" in tools else {}),
            **({"phash": outs["phash"][q.id]} if "phash" in tools else {}),
        } for q in queries],
    }
    out = rdir / f"accuracy-{data['mode']}-{stamp}.json"
    out.write_text(json.dumps(data, indent=1, default=str))
    (rdir / f"latest-{data['mode']}.json").write_text(out.read_text())
    (rdir / f"latest-{data['mode']}-table.md").write_text(
        markdown_table(tools, rows, neg_rows, names) + "\n")
    print(f"\nresults: {out}\nmarkdown table: {rdir / ('latest-' + data['mode'] + '-table.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
