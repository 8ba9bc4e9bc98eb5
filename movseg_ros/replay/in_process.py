"""In-process replay: read the bag in code and run the pipeline on every frame, deterministically.

No transport and no queue: every decodable image is segmented, so the same bag and settings
give the same outputs every time (the summary carries a digest of them to show it).
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from movseg_ros.bags.reader import read_images
from movseg_ros.frame import Frame
from movseg_ros.output import FrameOutput
from movseg_ros.pipeline import Pipeline
from movseg_ros.replay.account import FrameAccount
from movseg_ros.replay.options import ReplayOptions
from movseg_ros.replay.outputs import as_rgb, open_replay, topic_rate, write_summary
from movseg_ros.evaluation.stamped import StampedScorer
from movseg_ros.replay.timing import Timing
from movseg_ros.writers import OutputFolder


def replay_in_process(options: ReplayOptions) -> dict[str, Any]:
    """Run the pipeline over the bag's image topic; write outputs, plots and summary.json."""
    info, topic, total, truth = open_replay(options)
    pipeline = Pipeline(options.config)
    fps = topic_rate(info, topic) or 30.0
    folder = OutputFolder(options.out, fps, {"bag": str(options.bag), "topic": topic, "mode": "in-process"})
    scorer = StampedScorer(truth or {}, options.bag.name)
    account = FrameAccount(in_bag=total)
    timing = Timing()
    digest = hashlib.sha256()
    errors: list[str] = []
    images = read_images(options.bag, topic, on_error="skip")
    start = time.perf_counter()
    last_stamp: int | None = None
    for message in tqdm(images, total=total, desc=f"replay {options.bag.name}", unit="frame", file=sys.stderr,
                        disable=None):
        if message.index >= total:
            break
        last_stamp = message.stamp_ns
        frame = Frame(as_rgb(message.image, message.encoding), message.stamp_ns, message.frame_id, message.index)
        account.sent += 1
        account.received += 1
        began = time.perf_counter()
        try:
            outputs = pipeline.process(frame)
        except Exception as e:  # noqa: BLE001 - a frame the pipeline cannot take is counted, the rest go on
            account.failed += 1
            errors.append(f"frame {message.index} (stamp {message.stamp_ns}): {type(e).__name__}: {e}")
            continue
        elapsed_ms = 1000.0 * (time.perf_counter() - began)
        for output in outputs:
            _record(output, folder, scorer, digest, account)
            timing.add(elapsed_ms, time.perf_counter() - start)
    began = time.perf_counter()
    try:
        held = pipeline.finish()  # a near-online pipeline's last frames
    except Exception as e:  # noqa: BLE001 - counted like a failed frame
        held = []
        errors.append(f"end of stream: {type(e).__name__}: {e}")
    elapsed_ms = 1000.0 * (time.perf_counter() - began)
    for output in held:
        _record(output, folder, scorer, digest, account)
        timing.add(elapsed_ms, time.perf_counter() - start)
    bad = [b for b in images.report.bad if b[0] < total]
    last_stamp = max([last_stamp] + [b[1] for b in bad], key=lambda s: -1 if s is None else s)
    until = last_stamp if options.max_frames is not None else None
    account.bad_in_bag = len(bad)
    summary: dict[str, Any] = {
        "mode": "in-process", "bag": str(options.bag), "image_topic": topic,
        "truth_topic": options.truth_topic if truth is not None else None,
        "pipeline": pipeline.name, "device": pipeline.device,
        "account": account.to_dict(),
        "bad_in_bag": [{"index": i, "stamp_ns": s, "problem": p} for i, s, p in bad],
        "pipeline_errors": errors,
        "latency": timing.summary(),
        "output_digest": digest.hexdigest(),
        "metrics": scorer.result(options.missing_as_empty, until) if truth is not None else None,
    }
    summary["files"] = {name: str(options.out / rel) for name, rel in folder.finish().items()}
    return write_summary(summary, timing, options.out, f"in-process replay of {options.bag.name}")


def _record(output: FrameOutput, folder: OutputFolder, scorer: StampedScorer, digest: Any,
            account: FrameAccount) -> None:
    """One output into the files, the scorer, the digest and the account."""
    account.processed += 1
    account.outputs += 1
    account.recorded += 1
    folder.add(output)
    scorer.add(output.frame.stamp_ns, output.label_map)
    digest.update(np.int64(output.frame.stamp_ns).tobytes())
    digest.update(np.ascontiguousarray(output.label_map).tobytes())
    for t in output.tracks:
        digest.update(repr((t.id, t.box, t.moving, int(t.status), round(t.score, 6))).encode())
