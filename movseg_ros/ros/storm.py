"""Storms of hostile camera input for the real node: malformed messages, decompression bombs, bursts.

Shared by the fuzz test (test/test_node_fuzz.py) and `movseg bench storm`. Every message comes
from a seeded generator, so a failing run can be replayed; each carries the reasons the node may
count it under, so the run can check that every message was accounted for as what it was.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from movseg_ros.bench.rss_sampler import RssSampler

VALID = "valid"
# what a malformed message may be counted as (admission or decoding, see ros/admission.py)
ANY_DECODE = ("encoding", "truncated", "empty", "corrupt")
INJECTED = "INJECTED FAKE LINE"
HOSTILE_ENCODINGS = (
    "yuv422", "32FC1", "", "RGB8 ", f"rgb8\n[ERROR] [1700000000.000000000] [movseg]: {INJECTED}",
    "\x1b[31mred\x1b[0m\x1b[2J", "x" * 10_000, "rgb8\r\x00\u2028\u202e",
)


@dataclass(frozen=True)
class Probe:
    """One message of a storm: what it is, and the bad-input reasons it may be counted under (none if valid)."""

    name: str
    msg: Image | CompressedImage
    kinds: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.kinds


def texture(h: int, w: int, shift: int = 0, seed: int = 1) -> np.ndarray:
    """A smooth random texture shifted by `shift` px: a camera panning over a static world."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), np.uint8)
    big = cv2.resize(small, ((w // 8 + 2) * 8, (h // 8 + 2) * 8), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[8:8 + h, 8 + shift:8 + shift + w])


def raw(height: int, width: int, encoding: str, step: int, data: bytes) -> Image:
    return Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step, data=data)


def rgb_message(image: np.ndarray) -> Image:
    h, w = image.shape[:2]
    return raw(h, w, "rgb8", 3 * w, image.tobytes())


def compressed(fmt: str, data: bytes) -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


@lru_cache(maxsize=4)
def png_bomb(width: int = 12000, height: int = 9000) -> bytes:
    """A valid PNG of `width`x`height` black RGB pixels: about 100 KB that decodes to width*height*3 bytes."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)  # filter byte 0, then the row
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG header whose frame (SOF0) claims `width`x`height`, with no image data after it."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


@lru_cache(maxsize=4)
def jpeg_of(h: int, w: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(texture(h, w), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


@lru_cache(maxsize=4)
def texture_bytes(h: int, w: int) -> bytes:
    return texture(h, w).tobytes()


def malformed(rng: np.random.Generator, h: int = 480, w: int = 640) -> Probe:
    """One malformed message, drawn from the mix a broken driver or a hostile publisher sends."""
    good = texture_bytes(h, w)
    pick = int(rng.integers(0, 13))
    if pick == 0:
        enc = HOSTILE_ENCODINGS[int(rng.integers(0, len(HOSTILE_ENCODINGS)))]
        return Probe("encoding", raw(h, w, enc, 3 * w, good), ("encoding",))
    if pick == 1:
        cut = int(rng.integers(1, len(good)))
        return Probe("truncated", raw(h, w, "rgb8", 3 * w, good[:cut]), ("truncated",))
    if pick == 2:
        return Probe("short_step", raw(h, w, "rgb8", int(rng.integers(0, 3 * w)), good), ("step",))
    if pick == 3:
        hh, ww = ((0, w), (h, 0), (0, 0))[int(rng.integers(0, 3))]
        return Probe("empty", raw(hh, ww, "rgb8", 3 * ww, b""), ("empty",))
    if pick == 4:
        hh, ww = ((1, 1), (5, 7), (1, 100_000), (5000, 1), (12, 12), (15, 640), (480, 9))[int(rng.integers(0, 7))]
        return Probe("tiny", raw(hh, ww, "rgb8", 3 * ww, bytes(3 * ww * hh)), ("too_small",))
    if pick == 5:
        return Probe("huge_header", raw(20_000, 20_000, "rgb8", 60_000, good[:4096]), ("too_large",))
    if pick in (6, 7):
        return Probe("png_bomb", compressed("png", png_bomb()), ("too_large",))
    if pick == 8:
        return Probe("jpeg_claims_60000x60000", compressed("jpeg", jpeg_claiming(60_000, 60_000)), ("too_large",))
    if pick == 9:
        data = rng.integers(0, 256, int(rng.integers(1, 4096)), np.uint8).tobytes()
        return Probe("compressed_garbage", compressed(("png", "jpeg", "")[int(rng.integers(0, 3))], data), ANY_DECODE)
    if pick == 10:
        data = jpeg_of(h, w)
        return Probe("truncated_jpeg", compressed("jpeg", data[: int(rng.integers(200, len(data) - 16))]),
                     ("truncated", "corrupt"))
    if pick == 11:
        return Probe("compressed_format", compressed("bmp\n" + "y" * 500, jpeg_of(h, w)), ("encoding",))
    return Probe("compressed_empty", compressed("jpeg", b""), ("empty",))


def valid(i: int, h: int = 480, w: int = 640) -> Probe:
    """The i-th frame of a valid camera stream (a slow pan)."""
    return Probe(VALID, rgb_message(texture(h, w, shift=i % 8)))


def mixed_storm(seed: int, n_bad: int, valid_every: int = 20, h: int = 480, w: int = 640) -> Iterator[Probe]:
    """`n_bad` malformed messages with a valid frame after every `valid_every` of them."""
    rng = np.random.default_rng(seed)
    for i in range(n_bad):
        yield malformed(rng, h, w)
        if valid_every and (i + 1) % valid_every == 0:
            yield valid(i // valid_every, h, w)


def bomb_storm(n_bombs: int, valid_every: int = 2) -> Iterator[Probe]:
    """Decompression bombs (a 100 KB PNG of 12000x9000) with valid frames between them."""
    for i in range(n_bombs):
        yield Probe("png_bomb", compressed("png", png_bomb()), ("too_large",))
        if valid_every and (i + 1) % valid_every == 0:
            yield valid(i)


def burst_storm(n: int, h: int = 480, w: int = 640) -> Iterator[Probe]:
    """Valid frames only, sent far faster than the pipeline runs: they must be dropped, oldest first."""
    frames = [rgb_message(texture(h, w, shift=s)) for s in range(4)]
    for i in range(n):
        yield Probe(VALID, frames[i % 4])


def max_size_storm(n: int, side: int = 4096) -> Iterator[Probe]:
    """Valid frames at the largest accepted size (max_input_pixels = side*side by default)."""
    frames = [rgb_message(texture(side, side, shift=s)) for s in range(2)]
    for i in range(n):
        yield Probe(VALID, frames[i % 2])


@dataclass
class StormReport:
    """What one storm did to the node: accounting from its /diagnostics, memory, and whether it still answers."""

    name: str
    sent: int = 0
    sent_bad: int = 0
    sent_valid: int = 0
    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad: int = 0
    failed: int = 0
    lost: int = 0  # sent but never received (best-effort transport)
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    sent_by_kind: dict[str, int] = field(default_factory=dict)
    miscounted: int = 0  # messages that reached the queue beyond the valid ones sent: malformed ones not counted bad
    seconds: float = 0.0
    rss_idle_mb: float = 0.0
    rss_max_mb: float = 0.0
    answer_s: float | None = None  # a valid frame sent after the storm: seconds until its output
    alive: bool = True
    rss_samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rss_ratio(self) -> float:
        return self.rss_max_mb / self.rss_idle_mb if self.rss_idle_mb else float("nan")

    @property
    def accounted(self) -> bool:
        """bad + dropped + processed + failed + lost == sent, with nothing left in the queue."""
        return self.bad + self.dropped + self.processed + self.failed + self.lost == self.sent

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "rss_samples"}
        d.update(rss_ratio=self.rss_ratio, accounted=self.accounted)
        return d


def counters(d: dict[str, str]) -> dict[str, int]:
    """The node's cumulative counters from one /diagnostics status."""
    out = {k: int(d.get(f"frames {k}", "0")) for k in ("received", "processed", "dropped", "bad", "failed", "skipped")}
    out.update({key[len("bad input ("):-1]: int(v) for key, v in d.items() if key.startswith("bad input (")})
    return out


def settled(d: dict[str, str]) -> bool:
    """Nothing queued or in flight: every received frame is counted as something."""
    c = counters(d)
    return d.get("queue depth") == "0" and c["received"] == (c["processed"] + c["dropped"] + c["bad"] + c["failed"]
                                                              + c["skipped"])


def run_storm(name: str, client: Any, node: Any, probes: Iterator[Probe], rate_hz: float,
              stamps: Iterator[int], rss_idle_mb: float, settle_s: float = 20.0,
              progress: Callable[[int], None] | None = None) -> StormReport:
    """Send `probes` at `rate_hz` through `client` (a node_session.StreamClient), then account for them."""
    report = StormReport(name, rss_idle_mb=rss_idle_mb)
    before = counters(client.wait_diagnostics(settled, timeout=settle_s))
    sampler = RssSampler(node.pid).start()
    t0 = time.monotonic()
    period = 1.0 / rate_hz
    for i, probe in enumerate(probes):
        client.publish(probe.msg, next(stamps))
        report.sent += 1
        if probe.valid:
            report.sent_valid += 1
        else:
            report.sent_bad += 1
            report.sent_by_kind[probe.kinds[0]] = report.sent_by_kind.get(probe.kinds[0], 0) + 1
        if progress is not None:
            progress(i)
        time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
        if i % 50 == 0 and not node.alive():
            break
    report.seconds = time.monotonic() - t0
    report.alive = node.alive()
    if report.alive:
        after = counters(client.wait_diagnostics(
            lambda d: settled(d) and counters(d)["received"] > before["received"], timeout=settle_s))
        for k in ("received", "processed", "dropped", "bad", "failed"):
            setattr(report, k, after[k] - before[k])
        report.bad_by_kind = {k: after[k] - before.get(k, 0) for k in after
                              if k not in ("received", "processed", "dropped", "bad", "failed", "skipped")
                              and after[k] > before.get(k, 0)}
        report.lost = report.sent - report.received
        report.miscounted = max(0, report.processed + report.dropped + report.failed - report.sent_valid)
        stamp = next(stamps)
        sent_at = time.monotonic()
        client.publish(valid(0).msg, stamp)
        try:
            client.wait_output(stamp, timeout=10.0)
            report.answer_s = time.monotonic() - sent_at
        except (TimeoutError, AssertionError):  # the test harness raises AssertionError
            report.answer_s = None
    report.rss_max_mb = sampler.stop()
    report.rss_samples = sampler.samples
    return report
