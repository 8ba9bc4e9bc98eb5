"""PNG/JPEG header probing and completeness checks: real encoder output, every cut point, and fuzzed bytes."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.image_bytes import ImageDecodeError
from movseg_ros.image_format import (
    FORMAT_ERROR_KINDS, ImageFileError, check_complete, probe_size, read_image_bytes, read_image_file, sniff_format,
)

SIZES = ((1, 1), (7, 3), (64, 48), (33, 65))  # (width, height)


def encode(ext: str, width: int, height: int, params: tuple[int, ...] = (), seed: int = 0) -> bytes:
    """A noisy BGR image of the size, encoded by OpenCV."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    ok, buf = cv2.imencode(ext, pixels, list(params))
    assert ok
    return buf.tobytes()


ENCODINGS = {"png": (".png", ()), "jpeg": (".jpg", ()), "progressive": (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))}


@pytest.mark.parametrize("kind", ENCODINGS)
@pytest.mark.parametrize("width,height", SIZES)
def test_probe_reads_the_size_of_encoder_output(kind: str, width: int, height: int) -> None:
    ext, params = ENCODINGS[kind]
    data = encode(ext, width, height, params)
    fmt = "png" if ext == ".png" else "jpeg"
    assert probe_size(data) == (fmt, width, height)
    assert probe_size(memoryview(data)) == probe_size(np.frombuffer(data, np.uint8)) == (fmt, width, height)
    assert sniff_format(data) == fmt
    check_complete(data)


def test_progressive_jpeg_has_several_scans() -> None:
    data = encode(".jpg", 33, 65, ENCODINGS["progressive"][1])
    assert b"\xff\xc2" in data and data.count(b"\xff\xda") > 1  # really progressive: SOF2, several scans


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_cut_point_is_a_decode_error(kind: str) -> None:
    ext, params = ENCODINGS[kind]
    data = encode(ext, 64, 48, params)
    for cut in range(len(data)):
        part = data[:cut]
        with pytest.raises(ImageDecodeError) as caught:
            check_complete(part)
        assert caught.value.kind in (("empty",) if cut == 0 else ("truncated",)), (cut, str(caught.value))
        try:
            assert probe_size(part)[1:] == (64, 48)  # a header that made it in whole reads right
        except ImageDecodeError as e:
            assert e.kind in ("empty", "truncated"), (cut, str(e))


def test_jpeg_end_of_image_may_be_followed_by_padding() -> None:
    data = encode(".jpg", 16, 8)
    assert data.endswith(b"\xff\xd9")
    check_complete(data + bytes(4096))  # cameras pad to a block size
    with pytest.raises(ImageDecodeError, match="no end-of-image marker") as caught:
        check_complete(data[:-2] + bytes(4096))  # cut, then zero-filled: still no EOI
    assert caught.value.kind == "truncated"


def test_png_chunk_crc_and_missing_iend() -> None:
    data = bytearray(encode(".png", 16, 8))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0x40  # a flipped bit in the compressed pixels
    with pytest.raises(ImageDecodeError, match="IDAT at byte .* fails its CRC") as caught:
        check_complete(bytes(data))
    assert caught.value.kind == "corrupt"
    whole = encode(".png", 16, 8)
    with pytest.raises(ImageDecodeError, match="no IEND chunk") as caught:
        check_complete(whole[:-12])  # cut exactly before IEND: every chunk left is whole
    assert caught.value.kind == "truncated"


def test_header_problems_have_their_own_kinds() -> None:
    png = bytearray(encode(".png", 4, 4))
    png[16:20] = (0).to_bytes(4, "big")  # width 0, CRC made right again
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    cases = {
        b"": "empty",
        b"GIF89a\x01\x00\x01\x00": "encoding",
        bytes(png): "empty",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40: "corrupt",
        b"\xff\xd8\xff\xe0\x00\x01" + b"\x00" * 8: "corrupt",  # segment length 1
        b"\xff\xd8\xff\xda\x00\x02": "corrupt",  # scan before any frame header
        b"\xff\xd8\x12\x34": "corrupt",  # no marker where one must be
    }
    for data, kind in cases.items():
        with pytest.raises(ImageDecodeError) as caught:
            probe_size(data)
        assert caught.value.kind == kind, (data, str(caught.value))
    assert set(FORMAT_ERROR_KINDS) >= {"empty", "encoding", "truncated", "corrupt"}


def fuzz_inputs(rng: np.random.Generator) -> list[bytes]:
    """Random bytes, random bytes behind each signature, and bit-flipped and spliced real files."""
    seeds = [encode(".png", 12, 9), encode(".jpg", 12, 9), encode(".jpg", 12, 9, ENCODINGS["progressive"][1])]
    out = []
    for _ in range(300):
        noise = rng.integers(0, 256, int(rng.integers(0, 200)), np.uint8).tobytes()
        out += [noise, b"\x89PNG\r\n\x1a\n" + noise, b"\xff\xd8" + noise, b"\xff\xd8\xff" + noise]
    for seed in seeds:
        for _ in range(400):
            data = bytearray(seed)
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
            cut = int(rng.integers(0, len(data) + 1))
            out += [bytes(data), bytes(data[:cut]), bytes(data[:cut]) + rng.integers(0, 256, 50, np.uint8).tobytes()]
    return out


def test_fuzzed_bytes_raise_only_decode_errors() -> None:
    rng = np.random.default_rng(1234)
    for data in fuzz_inputs(rng):
        for check in (probe_size, check_complete):
            try:
                check(data)
            except ImageDecodeError as e:
                assert e.kind in FORMAT_ERROR_KINDS, (data, e.kind)


def test_read_image_file_names_the_file_and_the_problem(tmp_path: Path) -> None:
    rgb = np.zeros((8, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    good = tmp_path / "00000.png"
    cv2.imwrite(str(good), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image_file(good), rgb)  # RGB order
    data = encode(".jpg", 64, 48)
    cut = tmp_path / "00012.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(cut)) is not None  # what this guards against: OpenCV fills the rest with grey
    with pytest.raises(ImageFileError) as caught:
        read_image_file(cut)
    assert str(caught.value) == (f"{cut}: truncated JPEG: no end-of-image marker (FFD9) after the scan data "
                                 f"(file is {len(data) // 2:,} bytes)")
    assert caught.value.path == cut
    bmp = tmp_path / "frame.bmp"
    cv2.imwrite(str(bmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image_file(bmp), rgb)  # other formats OpenCV reads just decode
    odd = tmp_path / "bad\nname.png"
    odd.write_bytes(b"not an image")
    with pytest.raises(ImageFileError, match=r"bad\\nname\.png: OpenCV cannot decode an image from its 12 bytes"):
        read_image_file(odd)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match="empty.png: the file is empty"):
        read_image_bytes(tmp_path / "empty.png")
    with pytest.raises(ImageFileError, match="absent.png: cannot read the file: No such file"):
        read_image_bytes(tmp_path / "absent.png")
