"""PNG and JPEG structure from the bytes alone: the size in the header, and whether the image is whole.

OpenCV decodes a JPEG that was cut short as grey fill without a word, so every image from outside
(a file, a CompressedImage) is checked here before it is decoded. Only the signature, the chunk and
segment framing and the headers are read, never the pixels.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import cv2
import numpy as np

from movseg_ros.image_bytes import ImageDecodeError
from movseg_ros.safe_text import printable

CORRUPT = "corrupt"  # framing or checksum wrong: a chunk CRC, a byte where a marker must be, a short segment
FORMAT_ERROR_KINDS = ("encoding", "truncated", "empty", CORRUPT)  # the ImageDecodeError kinds raised here
PATH_LIMIT = 400  # characters of a file name kept in a message (data set paths are long; keep them whole)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_HEADER_END = 33  # signature (8) + IHDR length, type, 13 bytes of data, CRC
_PNG_MAX_LENGTH = 2**31 - 1  # largest chunk length and image side the PNG specification allows
_JPEG_SOI = b"\xff\xd8"
_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_STANDALONE = frozenset((_TEM, *range(0xD0, 0xD8)))  # TEM and RST0-7 carry no length field
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # a marker in scan data (FF00 is a stuffed byte, RSTn in-scan)
_NOT_FILL = re.compile(rb"[^\xff]")  # end of the 0xFF fill bytes a marker may be padded with


class ImageFileError(ValueError):
    """An image file that cannot be read whole; the message names the file and says what is wrong."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{printable(path, PATH_LIMIT)}: {problem}")


def sniff_format(data: bytes | memoryview | np.ndarray) -> str | None:
    """"png" or "jpeg" from the leading bytes (a signature cut short counts), else None; nothing is checked."""
    head = bytes(_byte_view(data)[:8])
    if head and PNG_SIGNATURE.startswith(head):
        return "png"
    if head and _JPEG_SOI.startswith(head[:2]):
        return "jpeg"
    return None


def probe_size(data: bytes | memoryview | np.ndarray) -> tuple[str, int, int]:
    """(format, width, height) of a PNG (signature + IHDR) or JPEG (markers up to the first SOFn) from
    the header alone, so a hostile payload is refused before any decoder sees it.

    Raises ImageDecodeError, and nothing else, for any other bytes: kind "empty" (no data, or a
    0-pixel header), "encoding" (neither PNG nor JPEG), "truncated" or "corrupt".
    """
    view = _byte_view(data)
    if not len(view):
        raise ImageDecodeError("empty", "no image data (0 bytes)")
    fmt = sniff_format(view)
    if fmt == "png":
        width, height = _png_size(view)
    elif fmt == "jpeg":
        width, height, _ = _jpeg_frame_header(view)
    else:
        raise ImageDecodeError(
            "encoding", f"neither PNG nor JPEG: the data starts with bytes {bytes(view[:8]).hex(' ')}")
    return fmt, width, height


def check_complete(data: bytes | memoryview | np.ndarray) -> None:
    """Raise ImageDecodeError unless a PNG or JPEG is whole: every PNG chunk inside the data with a good
    CRC up to IEND; a JPEG's segments inside the data and an end-of-image marker (FFD9) after its scan
    data. Whatever follows IEND or EOI (a camera's zero padding, an appended video) is allowed."""
    view = _byte_view(data)
    fmt, _, _ = probe_size(view)
    if fmt == "png":
        _check_png_chunks(view)
    else:
        _check_jpeg_scans(view)


def read_image_bytes(path: str | Path) -> bytes:
    """The bytes of an image file, checked whole (check_complete) when it is a PNG or JPEG; ImageFileError
    names the file when it cannot be read, is empty, or is a cut-off or corrupt PNG/JPEG."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageFileError(path, f"cannot read the file: {e.strerror or type(e).__name__}") from None
    if not data:
        raise ImageFileError(path, "the file is empty (0 bytes)")
    if sniff_format(data) is not None:
        try:
            check_complete(data)
        except ImageDecodeError as e:
            raise ImageFileError(path, f"{e} (file is {len(data):,} bytes)") from None
    return data


def read_image_file(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB of an image file; a PNG or JPEG must be whole first (OpenCV would fill the
    missing part with grey). Any failure is an ImageFileError naming the file."""
    return cv2.cvtColor(decode_image_file(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def decode_image_file(path: str | Path, flags: int) -> np.ndarray:
    """The image file as OpenCV decodes it with imread `flags` (BGR order), after read_image_bytes
    has checked it; any failure is an ImageFileError naming the file."""
    data = read_image_bytes(path)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        raise ImageFileError(path, f"OpenCV cannot decode the image: {printable(str(e).strip())}") from None
    if image is None or image.size == 0:
        raise ImageFileError(path, f"OpenCV cannot decode an image from its {len(data):,} bytes (not an image "
                                   "format it reads, or corrupt image data)")
    return image


def _byte_view(data: bytes | memoryview | np.ndarray) -> memoryview:
    """The data as a flat memoryview of bytes, without copying."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return memoryview(data).cast("B")


def _png_size(view: memoryview) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come first, be 13 bytes long and pass its CRC."""
    if len(view) < _PNG_HEADER_END:
        raise ImageDecodeError("truncated", f"truncated PNG: {len(view)} bytes end before the signature and IHDR "
                                            f"header are complete ({_PNG_HEADER_END} bytes)")
    length, kind = _be(view, 8, 4), bytes(view[12:16])
    if kind != b"IHDR" or length != 13:
        raise ImageDecodeError(CORRUPT, f"corrupt PNG: the first chunk must be a 13-byte IHDR, found "
                                        f"{_chunk_name(kind)} of {length:,} bytes")
    if zlib.crc32(view[12:29]) != _be(view, 29, 4):
        raise ImageDecodeError(CORRUPT, "corrupt PNG: the IHDR chunk fails its CRC check")
    width, height = _be(view, 16, 4), _be(view, 20, 4)
    if width == 0 or height == 0:
        raise ImageDecodeError("empty", f"PNG header says the image is {width}x{height} pixels")
    if max(width, height) > _PNG_MAX_LENGTH:
        raise ImageDecodeError(CORRUPT, f"corrupt PNG: header size {width}x{height} exceeds the PNG limit of "
                                        f"{_PNG_MAX_LENGTH:,} pixels a side")
    return width, height


def _check_png_chunks(view: memoryview) -> None:
    """Walk the chunks after IHDR to IEND: each inside the data, named by letters, with a good CRC."""
    pos, size = _PNG_HEADER_END, len(view)
    while pos + 8 <= size:
        length, kind = _be(view, pos, 4), bytes(view[pos + 4:pos + 8])
        if not kind.isalpha():
            raise ImageDecodeError(CORRUPT, f"corrupt PNG: bytes {kind.hex(' ')} at byte {pos + 4:,} are not a chunk "
                                            "name (a chunk length before it is wrong, or the data is damaged)")
        if length > _PNG_MAX_LENGTH:
            raise ImageDecodeError(CORRUPT, f"corrupt PNG: chunk {_chunk_name(kind)} at byte {pos:,} claims "
                                            f"{length:,} bytes, over the PNG limit of {_PNG_MAX_LENGTH:,}")
        end = pos + 12 + length
        if end > size:
            raise ImageDecodeError("truncated", f"truncated PNG: chunk {_chunk_name(kind)} at byte {pos:,} needs "
                                                f"{length + 12:,} bytes but only {size - pos:,} remain")
        if zlib.crc32(view[pos + 4:end - 4]) != _be(view, end - 4, 4):
            raise ImageDecodeError(CORRUPT, f"corrupt PNG: chunk {_chunk_name(kind)} at byte {pos:,} fails its "
                                            "CRC check")
        if kind == b"IEND":
            return
        pos = end
    raise ImageDecodeError("truncated", f"truncated PNG: no IEND chunk; the data ends at byte {size:,}"
                                        + (" inside a chunk header" if pos < size else " after a whole chunk"))


def _jpeg_frame_header(view: memoryview) -> tuple[int, int, int]:
    """(width, height, offset after the SOFn segment): the header segments from SOI on, skipped by their
    lengths, up to the first start-of-frame."""
    if len(view) < 2:
        raise ImageDecodeError("truncated", "truncated JPEG: 1 byte, the start-of-image marker is cut short")
    pos = 2
    while True:
        marker, pos = _next_marker(view, pos, "before its frame header (SOFn)")
        if marker in _STANDALONE:
            continue
        if marker in (_SOI, _EOI, _SOS):
            raise ImageDecodeError(CORRUPT, f"corrupt JPEG: marker FF{marker:02X} at byte {pos - 2:,} comes before "
                                            "any frame header (SOFn)")
        end = _segment_end(view, pos, marker)
        if marker in _SOF:
            if end - pos < 8:
                raise ImageDecodeError(CORRUPT, f"corrupt JPEG: frame header FF{marker:02X} at byte {pos - 2:,} is "
                                                f"{end - pos} bytes long, less than the 8 it needs")
            height, width = _be(view, pos + 3, 2), _be(view, pos + 5, 2)
            if width == 0 or height == 0:
                raise ImageDecodeError("empty", f"JPEG frame header says the image is {width}x{height} pixels")
            return width, height, end
        pos = end


def _check_jpeg_scans(view: memoryview) -> None:
    """From the frame header on: segments inside the data, at least one scan, then an EOI marker."""
    _, _, pos = _jpeg_frame_header(view)
    scanned = False
    while True:
        found = _MARKER.search(view, pos)
        if found is None:
            where = "after the scan data" if scanned else "and no scan (SOS) after the frame header"
            raise ImageDecodeError("truncated", f"truncated JPEG: no end-of-image marker (FFD9) {where}")
        marker, pos = view[found.start() + 1], found.end()
        if marker == _EOI:
            if not scanned:
                raise ImageDecodeError(CORRUPT, f"corrupt JPEG: end-of-image at byte {pos - 2:,} before any scan "
                                                "(SOS): there are no pixels")
            return
        if marker == _SOI:
            raise ImageDecodeError(CORRUPT, f"corrupt JPEG: a second start-of-image marker at byte {pos - 2:,}")
        if marker != _TEM:
            pos = _segment_end(view, pos, marker)
            scanned = scanned or marker == _SOS


def _next_marker(view: memoryview, pos: int, before: str) -> tuple[int, int]:
    """(marker code, offset after it) of the marker that must start at `pos`, past any 0xFF fill bytes."""
    size = len(view)
    if pos >= size:
        raise ImageDecodeError("truncated", f"truncated JPEG: the data ends at byte {size:,}, {before}")
    if view[pos] != 0xFF:
        raise ImageDecodeError(CORRUPT, f"corrupt JPEG: byte {pos:,} is 0x{view[pos]:02X} where a marker (0xFF) "
                                        "must start (a segment length before it is wrong, or the data is damaged)")
    code = _NOT_FILL.search(view, pos)
    if code is None:
        raise ImageDecodeError("truncated", f"truncated JPEG: the data ends in 0xFF fill bytes, {before}")
    marker = view[code.start()]
    if marker == 0x00:
        raise ImageDecodeError(CORRUPT, f"corrupt JPEG: FF00 at byte {code.start() - 1:,} where a marker must be")
    return marker, code.start() + 1


def _segment_end(view: memoryview, pos: int, marker: int) -> int:
    """Offset after the segment of `marker` whose 2-byte length field starts at `pos`."""
    size = len(view)
    if pos + 2 > size:
        raise ImageDecodeError("truncated", f"truncated JPEG: the data ends inside the length of segment "
                                            f"FF{marker:02X} at byte {pos - 2:,}")
    length = _be(view, pos, 2)
    if length < 2:
        raise ImageDecodeError(CORRUPT, f"corrupt JPEG: segment FF{marker:02X} at byte {pos - 2:,} has length "
                                        f"{length}, less than the 2 bytes of the length field itself")
    if pos + length > size:
        raise ImageDecodeError("truncated", f"truncated JPEG: segment FF{marker:02X} at byte {pos - 2:,} needs "
                                            f"{length:,} bytes but only {size - pos:,} remain")
    return pos + length


def _be(view: memoryview, pos: int, count: int) -> int:
    """The big-endian unsigned integer of `count` bytes at `pos` (the caller has checked they exist)."""
    return int.from_bytes(view[pos:pos + count], "big")


def _chunk_name(kind: bytes) -> str:
    """A PNG chunk type for a message: its letters, or its bytes in hex when they are not letters."""
    return kind.decode("ascii") if kind.isalpha() else f"[{kind.hex(' ')}]"
