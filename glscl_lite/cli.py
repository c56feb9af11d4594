"""Command line: ``glscl-lite <command>`` (also ``python -m glscl_lite``).

Each command parses its arguments here and calls one function of the package, so everything the
CLI does is also available from Python.  Imports are lazy so that ``glscl-lite --help`` is quick.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None


# ------------------------------------------------------------------------------------------ synth
def cmd_synth(args: argparse.Namespace) -> int:
    from glscl_lite.data.synthetic import generate_corpus

    summary = generate_corpus(
        args.out, n_videos=args.videos, seed=args.seed, size=args.size, fps=args.fps,
        workers=args.workers, progress=not args.quiet,
    )
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------------------------------- data
def cmd_data_check(args: argparse.Namespace) -> int:
    from glscl_lite.data.msrvtt import check_dataset

    notes: list[str] = []
    problems = check_dataset(args.anno, args.videos, max_frames=args.max_frames,
                             decode=not args.no_decode, progress=not args.quiet, notes=notes)
    for line in notes:  # not problems (exit status unchanged): e.g. a variable frame rate
        print(f"note: {line}", file=sys.stderr)
    for line in problems:
        print(line)
    if problems:
        print(f"data check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("data check: OK", file=sys.stderr)
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from glscl_lite.data.msrvtt import make_reduced_split

    written = make_reduced_split(
        args.anno, out_dir=args.out or args.anno, train_videos=args.train_videos,
        val_videos=args.val_videos, val_captions=args.val_captions, seed=args.seed,
        train_csv=args.train_csv,
    )
    print(json.dumps({k: str(v) for k, v in written.items()}, indent=2))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from glscl_lite.data.download import download_msrvtt

    download_msrvtt(args.dest, anno_url=args.anno_url, video_url=args.video_url,
                    videos=not args.no_videos, check=not args.no_check, progress=not args.quiet)
    return 0


# ------------------------------------------------------------------------------------------ cache
def cmd_cache_frames(args: argparse.Namespace) -> int:
    from glscl_lite.data.cache import build_frame_cache
    from glscl_lite.data.msrvtt import all_video_ids

    ids = all_video_ids(args.anno)
    info = build_frame_cache(ids, args.videos, args.out, max_frames=args.max_frames,
                             image_size=args.size, workers=args.workers, progress=not args.quiet)
    print(json.dumps(info, indent=2))
    return 0


def cmd_cache_features(args: argparse.Namespace) -> int:
    from glscl_lite.config import load_config
    from glscl_lite.features import build_feature_cache, reuse_feature_cache

    cfg = load_config(args.config, args.set)
    meta = None if args.force else reuse_feature_cache(cfg, args.out)
    if meta is not None:
        print(f"{args.out}: feature cache up to date (same settings, inputs and CLIP weights); "
              "kept as is (--force rebuilds it)", file=sys.stderr)
        print(json.dumps({**meta, "reused": True}, indent=2))
        return 0
    info = build_feature_cache(cfg, args.out, progress=not args.quiet)
    print(json.dumps({**info, "reused": False}, indent=2))
    return 0


# ---------------------------------------------------------------------------------- train / eval
def cmd_train(args: argparse.Namespace) -> int:
    from glscl_lite.train import train

    result = train(config=args.config, overrides=args.set, out=args.out)
    print(json.dumps(result, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from glscl_lite.evaluate import evaluate_run

    result = evaluate_run(args.run, split=args.split, dsl=args.dsl, checkpoint=args.checkpoint,
                          json_path=args.json, ties=args.ties, probes=args.probes)
    print(json.dumps(result, indent=2))
    if args.probes:
        from glscl_lite.probes_eval import format_probes

        print(format_probes(result), file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ ablate
def cmd_ablate(args: argparse.Namespace) -> int:
    from glscl_lite.ablation import format_summary, run_ablation, summarize

    df = run_ablation(args.config, args.set, grid=args.grid, seeds=args.seeds, out=args.out,
                      feature_cache=args.feature_cache, pretrain_steps=args.pretrain_steps,
                      export=args.export, progress=not args.quiet)
    print(format_summary(summarize(df)).to_string(index=False))
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from glscl_lite.gallery import format_table, run_gallery

    summary = run_gallery(args.config, args.set, args.out, seeds=args.seeds, settings=args.settings,
                          export=args.export, n_boot=args.n_boot, progress=not args.quiet, train_only=args.train_only)
    if summary is not None:
        print(format_table(summary, "t2v_R1"))
    return 0


# ---------------------------------------------------------------------------------- index / search
def cmd_index_build(args: argparse.Namespace) -> int:
    from glscl_lite.search import IndexParams, build_index

    params = IndexParams(kind=args.kind, flat_max=args.flat_max, hnsw_max=args.hnsw_max,
                         ef_search=args.ef_search, nprobe=args.nprobe)
    meta = build_index(args.run, args.out, videos=args.videos, params=params, checkpoint=args.checkpoint,
                       progress=not args.quiet)
    print(json.dumps(meta, indent=2))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from glscl_lite.search import search

    result = search(args.index, args.query, k=args.k, rerank=args.rerank, candidates=args.candidates,
                    json_path=args.json)
    for i, hit in enumerate(result["results"], 1):
        print(f"{i:3d}  {hit['video_id']:<24} {hit['score']:+.4f}  (coarse {hit['coarse_score']:+.4f}, "
              f"stage-1 rank {hit['coarse_rank'] + 1})")
    return 0


# --------------------------------------------------------------------------- pretrain / zeroshot
def cmd_pretrain(args: argparse.Namespace) -> int:
    from glscl_lite.pretrain import PretrainSettings, finish_pretraining, pretrain

    given = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
             "warmup": args.warmup, "seed": args.seed, "twins": args.twins,
             "twin_attributes": tuple(args.twin_attributes) if args.twin_attributes else None,
             "set_size": args.set_size, "size_twins": args.size_twins,
             "partial_captions": args.partial_captions, "init": str(args.init) if args.init else None}
    settings = PretrainSettings(**{k: v for k, v in given.items() if v is not None})
    pretrain(settings, args.out, threads=args.threads, progress=not args.quiet, workers=args.workers,
             device=args.device)
    report = finish_pretraining(args.out, frames=args.frames)
    print(json.dumps(report, indent=2))
    return 0


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from glscl_lite.errors import UserError
    from glscl_lite.model.standin import load_standin
    from glscl_lite.utils import write_json_atomic
    from glscl_lite.zeroshot import evaluate_clip

    if args.weights and args.model:
        raise UserError("zeroshot: give --weights (a file or pretraining folder) or --model (a shipped stand-in), not both")
    model = load_standin(args.weights, model=args.model)
    report = evaluate_clip(model, n_frames=args.frames, seed=args.seed)
    if args.json:
        write_json_atomic(args.json, report)
    print(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------------------- profile
def cmd_profile(args: argparse.Namespace) -> int:
    from glscl_lite.flops import profile, write_report

    report = profile(args.backbone, frames=args.frames, words=args.words, device=args.device,
                     latency=not args.no_latency, threads=args.threads,
                     progress=None if args.quiet else (lambda msg: print(msg, file=sys.stderr)))
    if args.json:
        write_report(report, args.json)
    summary = {"backbone": report["backbone"], "units": report["units"],
               "components": {k: {"macs": v["macs"], "flops": v["flops"]} for k, v in report["components"].items()},
               "per_pair": {k: {"macs": v["macs"], "flops": v["flops"]} for k, v in report["per_pair"].items()},
               "ratios": report["ratios"]}
    print(json.dumps(summary, indent=2))
    return 0


# -------------------------------------------------------------------------------------- notebooks
def cmd_notebooks(args: argparse.Namespace) -> int:
    from glscl_lite.papermill_runner import run_notebooks

    failures = run_notebooks(args.out, smoke=args.smoke, only=args.only, timeout=args.timeout,
                             parameters=dict(p.split("=", 1) for p in args.param))
    return 1 if failures else 0


# ------------------------------------------------------------------------------------------- main
def _indexable_head(name: str) -> str:
    """``--rerank`` values: the heads of the registry that a search index can hold."""
    from glscl_lite.model.registry import indexable_heads

    if name not in indexable_heads():
        raise argparse.ArgumentTypeError(f"invalid choice: {name!r} (choose from {', '.join(indexable_heads())})")
    return name


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glscl-lite", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic corpus in the exact MSR-VTT layout")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--videos", type=int, default=48)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=_size, default=None, help="WIDTHxHEIGHT (default 160x120)")
    s.add_argument("--fps", type=int, default=None)
    s.add_argument("--workers", type=int, default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_synth)

    d = sub.add_parser("data", help="MSR-VTT annotations: check, split, download")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="every split id has a decodable video and captions")
    c.add_argument("--anno", required=True, type=Path)
    c.add_argument("--videos", required=True, type=Path)
    c.add_argument("--max-frames", type=int, default=12)
    c.add_argument("--no-decode", action="store_true", help="only check that files exist")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=cmd_data_check)
    sp = dsub.add_parser("split", help="reduced train split + validation carved from train videos")
    sp.add_argument("--anno", required=True, type=Path)
    sp.add_argument("--out", type=Path, default=None, help="default: the --anno folder")
    sp.add_argument("--train-videos", type=int, default=None, help="train subset size (default: all)")
    sp.add_argument("--val-videos", type=int, required=True)
    sp.add_argument("--val-captions", type=int, default=1, help="captions per validation video")
    sp.add_argument("--train-csv", default="MSRVTT_train.9k.csv")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=cmd_data_split)
    dl = dsub.add_parser("download", help="fetch the public MSR-VTT annotation and video archives")
    dl.add_argument("--dest", required=True, type=Path)
    dl.add_argument("--anno-url", default=None)
    dl.add_argument("--video-url", default=None)
    dl.add_argument("--no-videos", action="store_true")
    dl.add_argument("--no-check", action="store_true")
    dl.add_argument("--quiet", action="store_true")
    dl.set_defaults(func=cmd_data_download)

    ca = sub.add_parser("cache", help="frame cache (decoded once) or feature cache (frozen CLIP)")
    casub = ca.add_subparsers(dest="cache_command", required=True)
    cf = casub.add_parser("frames")
    cf.add_argument("--anno", required=True, type=Path)
    cf.add_argument("--videos", required=True, type=Path)
    cf.add_argument("--out", required=True, type=Path)
    cf.add_argument("--max-frames", type=int, default=12)
    cf.add_argument("--size", type=int, default=224)
    cf.add_argument("--workers", type=int, default=None)
    cf.add_argument("--quiet", action="store_true")
    cf.set_defaults(func=cmd_cache_frames)
    cfe = casub.add_parser("features")
    cfe.add_argument("--config", required=True, help="preset name or JSON file")
    cfe.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    cfe.add_argument("--out", required=True, type=Path)
    cfe.add_argument("--force", action="store_true",
                     help="rebuild even when --out holds a cache of these settings, inputs and weights "
                          "(default: keep it; a cache of anything else is refused unless --force)")
    cfe.add_argument("--quiet", action="store_true")
    cfe.set_defaults(func=cmd_cache_features)

    t = sub.add_parser("train", help="train (resumes when --out exists)")
    t.add_argument("--config", required=True, help="preset name or JSON file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--out", required=True, type=Path)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a run: t2v and v2t R@1/5/10, MdR, MnR")
    e.add_argument("--run", required=True, type=Path)
    e.add_argument("--split", default="test", choices=["test", "val"])
    e.add_argument("--checkpoint", default="best", help="best | last | a path")
    e.add_argument("--dsl", action="store_true", help="also report DSL numbers")
    e.add_argument("--ties", default="official", choices=["official", "optimistic", "pessimistic"],
                   help="ranking of equal scores: official (one entry per tied position, as released), "
                        "optimistic (best tied rank), pessimistic (worst)")
    e.add_argument("--probes", action="store_true",
                   help="also score the diagnostic probes (moment, order, binding) of the synthetic corpus "
                        "and report the oracle (best R@1 the test captions allow); needs DIR/probes/")
    e.add_argument("--json", type=Path, default=None)
    e.set_defaults(func=cmd_eval)

    ab = sub.add_parser("ablate", help="grid of settings x seeds -> DIR/results.csv (resumes, skips finished cells)")
    ab.add_argument("--config", required=True, help="base config: preset name or JSON file")
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ab.add_argument("--grid", required=True,
                    help="icl_idl | queries | sharing | icl_normalizer | full | a JSON file {name: {key: value}}")
    ab.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ab.add_argument("--out", required=True, type=Path)
    ab.add_argument("--feature-cache", type=Path, default=None,
                    help="train the head on frozen-CLIP features cached here (built when missing)")
    ab.add_argument("--pretrain-steps", type=int, default=None,
                    help="first train the base config end to end this many steps; its CLIP (frozen) "
                         "is then `pretrained` for every cell (corpora without pretrained CLIP weights)")
    ab.add_argument("--export", type=Path, default=None,
                    help="also write ablation_*.csv and figures (PNG) to this folder")
    ab.add_argument("--quiet", action="store_true")
    ab.set_defaults(func=cmd_ablate)

    ga = sub.add_parser("gallery", help="the ablation gallery: settings x seeds, per-item outcomes, paired-bootstrap CIs")
    ga.add_argument("--config", required=True, help="base config: preset name or JSON file")
    ga.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ga.add_argument("--out", required=True, type=Path)
    ga.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ga.add_argument("--settings", nargs="*", default=None, help="subset of the gallery's settings (default: all)")
    ga.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    ga.add_argument("--export", type=Path, default=None, help="write summary.csv, figures and config here")
    ga.add_argument("--train-only", action="store_true",
                    help="train exactly the --settings cells (default only if named), score nothing: a second "
                         "worker on a disjoint subset; finish with a run without it")
    ga.add_argument("--quiet", action="store_true")
    ga.set_defaults(func=cmd_gallery)

    ix = sub.add_parser("index", help="large-gallery search index (faiss coarse stage + rerank features)")
    ixsub = ix.add_subparsers(dest="index_command", required=True)
    ib = ixsub.add_parser("build", help="encode a gallery with trained runs and write INDEX (atomically)")
    ib.add_argument("--run", required=True, action="append", type=Path,
                    help="run folder; repeat for several heads (search --rerank picks one)")
    ib.add_argument("--videos", type=Path, default=None,
                    help="folder of <id>.mp4 or a file of ids (default: every video of the run's annotations)")
    ib.add_argument("--out", required=True, type=Path)
    ib.add_argument("--checkpoint", default="best", help="best | last | a path")
    ib.add_argument("--kind", default="auto", choices=["auto", "flat", "hnsw", "ivf"])
    ib.add_argument("--flat-max", type=int, default=50_000, help="auto: exact search up to N videos")
    ib.add_argument("--hnsw-max", type=int, default=500_000, help="auto: HNSW up to N videos, IVF beyond")
    ib.add_argument("--ef-search", type=int, default=512)
    ib.add_argument("--nprobe", type=int, default=32)
    ib.add_argument("--quiet", action="store_true")
    ib.set_defaults(func=cmd_index_build)

    se = sub.add_parser("search", help="text query -> top videos (coarse recall, then rerank)")
    se.add_argument("query")
    se.add_argument("--index", required=True, type=Path)
    se.add_argument("--k", type=int, default=10)
    se.add_argument("--rerank", default=None, type=_indexable_head, metavar="HEAD",
                    help="head whose run recalls and reranks, one of the registry's indexable heads "
                         "(glscl_lite.model.registry; default: the index's first run)")
    se.add_argument("--candidates", type=int, default=50, help="stage-1 candidates reranked")
    se.add_argument("--json", type=Path, default=None)
    se.set_defaults(func=cmd_search)

    pt = sub.add_parser("pretrain", help="pretrain the stand-in CLIP on frames of the synthetic world (resumes)")
    pt.add_argument("--out", required=True, type=Path)
    pt.add_argument("--steps", type=int, default=None, help="default: PretrainSettings.steps")
    pt.add_argument("--model", default=None, help="open_clip config name (default: the shipped stand-in's)")
    pt.add_argument("--batch-size", type=int, default=None, help="default: PretrainSettings.batch_size")
    pt.add_argument("--lr", type=float, default=None, help="default: PretrainSettings.lr")
    pt.add_argument("--warmup", type=int, default=None, help="default: PretrainSettings.warmup")
    pt.add_argument("--seed", type=int, default=None, help="default: PretrainSettings.seed")
    pt.add_argument("--twins", type=float, default=None, help="fraction of a batch in twin pairs (default 0.5)")
    pt.add_argument("--twin-attributes", nargs="+", default=None, choices=["shape", "size", "position"],
                    help="what a twin may change (default: shape size; position: another third of the frame)")
    pt.add_argument("--set-size", type=int, default=None,
                    help="frames per minimal set: 2 = twins (default); up to 8 over shape alone, 9 over position, 3 with size")
    pt.add_argument("--size-twins", type=float, default=None,
                    help="fraction of a batch in size twins after the sets (a mixed batch; default 0)")
    pt.add_argument("--partial-captions", type=float, default=None,
                    help="fraction of captions that say only some of an object's words (default 0)")
    pt.add_argument("--init", default=None,
                    help="continue from these stand-in weights (a finished pretraining folder, its weights.fp16.pt, or "
                         "'shipped': the package's stand-in of --model) under a new schedule; give another --seed")
    pt.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    pt.add_argument("--workers", type=int, default=1,
                    help="processes rendering frames (0: in the trainer; on a GPU, all cores but one)")
    pt.add_argument("--device", default="cpu", help="cpu, cuda or auto (not part of the run's record: it resumes anywhere)")
    pt.add_argument("--frames", type=int, default=1000, help="held-out frames of the final zero-shot check")
    pt.add_argument("--quiet", action="store_true")
    pt.set_defaults(func=cmd_pretrain)

    zs = sub.add_parser("zeroshot", help="zero-shot colour/shape/size/background and frame-caption R@1 of a stand-in CLIP")
    zs.add_argument("--weights", default=None,
                    help="weights file (.pt with its .json) or pretraining folder (default: the shipped stand-in)")
    zs.add_argument("--model", default=None,
                    help="the shipped stand-in of this model config (default glscl-synthetic-hybrid; also glscl-synthetic)")
    zs.add_argument("--seed", type=int, default=0, help="held-out frame stream")
    zs.add_argument("--frames", type=int, default=1000)
    zs.add_argument("--json", type=Path, default=None)
    zs.set_defaults(func=cmd_zeroshot)

    pr = sub.add_parser("profile", help="FLOPs (fvcore MACs; FLOPs = 2 MACs) and latency per component and per pair")
    pr.add_argument("--backbone", default="ViT-B-32-quickgelu", help="open_clip model name, e.g. glscl-tiny")
    pr.add_argument("--json", type=Path, default=None, help="write the full report here")
    pr.add_argument("--frames", type=int, default=12)
    pr.add_argument("--words", type=int, default=32)
    pr.add_argument("--device", default="cpu")
    pr.add_argument("--threads", type=int, default=None, help="torch threads while timing (default: torch's)")
    pr.add_argument("--no-latency", action="store_true", help="count FLOPs only")
    pr.add_argument("--quiet", action="store_true")
    pr.set_defaults(func=cmd_profile)

    nb = sub.add_parser("notebooks", help="execute every notebook headlessly with papermill")
    nb.add_argument("--out", type=Path, default=Path("runs/notebooks"))
    nb.add_argument("--smoke", action="store_true")
    nb.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 00 03")
    nb.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    nb.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    nb.set_defaults(func=cmd_notebooks)

    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from glscl_lite.errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"glscl-lite: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
