"""movseg synth: synthetic moving-object clips with exact flow, ids and moving flags.

  gallery  one clip as a PNG grid (frames; flow; instance ids; moving flags)
  bench    frames per second of the generator alone and through the torch Dataset + DataLoader
  write    clips in the DAVIS layout (+ palette instance annotations, moving masks, .flo flow, meta.json)
  coco     objectness images in the COCO instances format (frame 0 of each clip, every visible object)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import PRESETS, SynthConfig, SynthConfigError, preset
from movseg_ros.synth.textures import load_bank

ACTIONS = ("gallery", "bench", "write", "coco")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS,
                   help="gallery: PNG of one clip; bench: frames/s; write: DAVIS layout; coco: COCO instances")
    p.add_argument("target", nargs="?", type=Path, metavar="OUT", help="coco: output folder (or --out)")
    p.add_argument("--preset", default="motion", help=f"settings to start from ({', '.join(PRESETS)}; default motion)")
    p.add_argument("--seed", "--base-seed", type=int, default=0, help="seed of the (first) clip (default 0)")
    p.add_argument("--width", type=int, help="override the preset's width")
    p.add_argument("--height", type=int, help="override the preset's height")
    p.add_argument("--frames", type=int, help="override the preset's frames per clip")
    p.add_argument("--textures", choices=("auto", "davis", "skimage"),
                   help="texture source (default the preset's: DAVIS when present, else scikit-image)")
    p.add_argument("--out", type=Path,
                   help="gallery: PNG path (default out/synth/gallery.png); write: folder (default out/synth/<preset>); "
                        "coco: folder (same as OUT)")
    p.add_argument("--rows", type=int, default=6, help="gallery: frames shown (default 6)")
    p.add_argument("--seconds", type=float, default=5.0, help="bench: seconds per measurement (default 5)")
    p.add_argument("--clips", type=int, default=10, help="write: number of clips (default 10)")
    p.add_argument("--images", type=int, help="coco: number of images (one 2-frame clip each)")
    p.add_argument("--min-pixels", type=int, default=16,
                   help="coco: leave out instances with fewer visible pixels (default 16)")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="write: frame format (default jpg)")
    p.add_argument("--annotations", choices=("instances", "moved"), default="instances",
                   help="write: what Annotations/ holds: palette instance ids (default), or 0/255 masks of the objects "
                        "that have moved by each frame (a binary set, e.g. for movseg train visual_memory)")
    p.add_argument("--bag", action="store_true",
                   help="write: also write each clip as a rosbag2 bag OUT/bags/<clip> (images + truth of the "
                        "objects that move at some point, as mono16, same stamps)")
    p.add_argument("--rate", type=float, default=30.0, help="write --bag: camera rate in Hz (default 30)")
    p.add_argument("--json", type=Path, help="also write the summary here as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        if args.target is not None and args.action != "coco":
            raise SynthConfigError(f"OUT ({args.target}) is only for coco; {args.action} takes --out")
        if args.action == "gallery":
            summary = _gallery(args, config)
        elif args.action == "bench":
            summary = _bench(args, config)
        elif args.action == "write":
            summary = _write(args, config)
        else:
            summary = _coco(args, config)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary, indent=1))
    except (SynthConfigError, ValueError, OSError) as e:
        print(f"movseg synth: error: {e}", file=sys.stderr)
        return 2
    return 0


def _config(args: argparse.Namespace) -> SynthConfig:
    config = preset(args.preset)
    changes = {k: v for k, v in (("width", args.width), ("height", args.height), ("frames", args.frames),
                                 ("texture_source", args.textures)) if v is not None}
    if args.seed < 0:
        raise SynthConfigError(f"--seed must be >= 0, got {args.seed}")
    return config.replace(**changes) if changes else config


def _gallery(args: argparse.Namespace, config: SynthConfig) -> dict[str, Any]:
    from movseg_ros.synth.gallery import gallery

    if args.rows < 1:
        raise SynthConfigError(f"--rows must be >= 1, got {args.rows}")
    clip = generate_clip(config, args.seed)
    out = args.out or Path("out/synth/gallery.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(gallery(clip, args.rows), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out}")
    print(f"synth gallery: preset {args.preset}, seed {args.seed}, {config.width}x{config.height}, "
          f"{config.frames} frames, textures {clip.texture_source}")
    print(f"{'id':>3} {'event':<9} {'depth':>6}  {'moving per frame':<24} look")
    for i in clip.ids:
        flags = "".join("M" if m else "." for m in clip.moving[:, i])
        print(f"{i:>3} {clip.events[i]:<9} {clip.depth[i]:>6.2f}  {flags[:24]:<24} {clip.kinds[i]}")
    print(f"camera {'still' if clip.camera.still else 'moving'}, blur exposure {clip.exposure:.2f}, "
          f"noise sigma {clip.noise_sigma:.2f}")
    print(f"wrote {out}")
    return {"action": "gallery", "preset": args.preset, "seed": args.seed, "out": str(out),
            "texture_source": clip.texture_source, "events": {str(k): v for k, v in clip.events.items()},
            "moving": {str(i): clip.moving[:, i].tolist() for i in clip.ids}, "config": config.to_dict()}


def _bench(args: argparse.Namespace, config: SynthConfig) -> dict[str, Any]:
    if not args.seconds > 0:
        raise SynthConfigError(f"--seconds must be > 0, got {args.seconds}")
    start = time.perf_counter()
    bank = load_bank(config.texture_source, config.width, config.height, config.davis_root)
    load_s = time.perf_counter() - start
    rows = [_bench_generate(config, args.seed, args.seconds)]
    note = ""
    if importlib.util.find_spec("torch") is None:  # the Dataset rows need the ml extra
        note = "torch not installed: Dataset rows skipped"
    else:
        rows += [_bench_loader(config, args.seed, args.seconds, "clips", 0),
                 _bench_loader(config, args.seed, args.seconds, "clips", 2),
                 _bench_loader(config, args.seed, args.seconds, "pairs", 0)]
    print(f"synth bench: preset {args.preset}, {config.width}x{config.height}, {config.frames} frames/clip, "
          f"textures {bank.source} (loaded in {load_s:.2f} s)")
    print(f"{'what':<34}{'workers':>8}{'items':>7}{'frames':>8}{'frames/s':>10}")
    for r in rows:
        print(f"{r['what']:<34}{r['workers']:>8}{r['items']:>7}{r['frames']:>8}{r['frames_per_s']:>10.1f}")
    if note:
        print(note)
    return {"action": "bench", "preset": args.preset, "width": config.width, "height": config.height,
            "frames_per_clip": config.frames, "texture_source": bank.source, "bank_load_s": round(load_s, 3),
            "rows": rows, "note": note, "config": config.to_dict()}


def _bench_generate(config: SynthConfig, seed: int, seconds: float) -> dict[str, Any]:
    """generate_clip alone, one process, clip after clip."""
    clips = frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        frames += generate_clip(config, seed + clips).images.shape[0]
        clips += 1
    elapsed = time.perf_counter() - start
    return {"what": "generate_clip", "workers": 0, "items": clips, "frames": frames,
            "frames_per_s": round(frames / elapsed, 1)}


def _bench_loader(config: SynthConfig, seed: int, seconds: float, kind: str, workers: int) -> dict[str, Any]:
    """Items through a DataLoader (batch 1); timing starts once every worker has delivered (start-up left out)."""
    from torch.utils.data import DataLoader

    from movseg_ros.synth.dataset import SynthClipDataset, SynthPairDataset, collate_pairs

    if kind == "clips":
        dataset, collate, per_item = SynthClipDataset(config, 10**6, seed), None, config.frames
    else:
        dataset, collate, per_item = SynthPairDataset(config, 10**6, seed), collate_pairs, 2
    loader = DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=collate)
    warm = max(1, workers)
    items = 0
    start = None
    for items, _ in enumerate(loader, start=1):
        if items == warm:
            start = time.perf_counter()
        elif start is not None and time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    timed = items - warm
    what = f"{'SynthClipDataset' if kind == 'clips' else 'SynthPairDataset'}+DataLoader"
    return {"what": what, "workers": workers, "items": timed, "frames": timed * per_item,
            "frames_per_s": round(timed * per_item / max(elapsed, 1e-9), 1)}


def _write(args: argparse.Namespace, config: SynthConfig) -> dict[str, Any]:
    from movseg_ros.synth.writers import write_davis_layout

    if args.clips < 1:
        raise SynthConfigError(f"--clips must be >= 1, got {args.clips}")
    out = args.out or Path("out/synth") / args.preset
    start = time.perf_counter()
    written = []
    for i in tqdm(range(args.clips), desc="synth write", unit="clip", file=sys.stderr, disable=None):
        seed = args.seed + i
        clip = generate_clip(config, seed)
        name = f"{args.preset}-{seed:05d}"
        write_davis_layout(clip, out, name, args.format, args.annotations)
        if args.bag:
            _write_bag(clip, out / "bags" / name, args.rate)
        written.append({"name": name, "seed": seed, "instances": clip.n_instances,
                        "moving_ids": sorted({i for t in range(config.frames) for i in clip.moving_ids(t)}),
                        "static_ids": list(clip.static_ids)})
    seconds = time.perf_counter() - start
    print(f"synth write: {args.clips} clips x {config.frames} frames ({config.width}x{config.height}, "
          f"preset {args.preset}) in {seconds:.1f} s -> {out}")
    print(f"{'clip':<22}{'instances':>10}  moving ids / static ids")
    for w in written:
        print(f"{w['name']:<22}{w['instances']:>10}  {w['moving_ids']} / {w['static_ids']}")
    if args.bag:
        print(f"bags in {out / 'bags'} (replay one with: movseg replay {out / 'bags' / written[0]['name']})")
    return {"action": "write", "preset": args.preset, "out": str(out), "clips": written,
            "bags": str(out / "bags") if args.bag else None,
            "seconds": round(seconds, 2), "format": args.format, "config": config.to_dict()}


def _coco(args: argparse.Namespace, config: SynthConfig) -> dict[str, Any]:
    from movseg_ros.synth.coco import write_coco

    if args.images is None or args.images < 1:
        raise SynthConfigError(f"coco needs --images N >= 1, got {args.images}")
    out = args.target or args.out
    if out is None:
        raise SynthConfigError("coco needs an output folder: movseg synth coco OUT --images N")
    start = time.perf_counter()
    path = write_coco(config, out, args.images, base_seed=args.seed, min_pixels=args.min_pixels, progress=True)
    seconds = time.perf_counter() - start
    anns = json.loads(path.read_text())["annotations"]
    moving = sum(a["moving"] for a in anns)
    empty = args.images - len({a["image_id"] for a in anns})
    print(f"synth coco: {args.images} images ({config.width}x{config.height}, preset {args.preset}, seeds "
          f"{args.seed}..{args.seed + args.images - 1}) in {seconds:.1f} s -> {out}")
    print(f"{len(anns)} objects ({moving} moving, {len(anns) - moving} static), {empty} image(s) without any; "
          f"one category 'object'")
    print(f"wrote {path} and {args.images} PNGs in {out / 'images'}")
    return {"action": "coco", "preset": args.preset, "out": str(out), "annotations": str(path),
            "images": args.images, "base_seed": args.seed, "objects": len(anns), "moving": moving,
            "empty_images": empty, "seconds": round(seconds, 2), "config": config.to_dict()}


def _write_bag(clip: Any, path: Path, rate: float) -> None:
    """The clip through the bag tools: rgb8 frames and, as truth, the ids of objects that ever move."""
    from movseg_ros.bags.writer import BagMakeConfig, write_image_bag

    movers = sorted({i for t in range(clip.images.shape[0]) for i in clip.moving_ids(t)})
    truth = (np.where(np.isin(ids, movers), ids, 0).astype(np.uint16) for ids in clip.instances)
    write_image_bag(path, zip(clip.images, truth), BagMakeConfig(rate_hz=rate), overwrite=True)
