"""Frame validation and the sliding clip buffer that resets when the stream breaks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from core_helpers import blank_frame

from movseg_ros.clip_buffer import BufferReset, ClipBuffer
from movseg_ros.frame import Frame

# --- Frame -------------------------------------------------------------------------------------


def test_frame_reports_its_size_as_height_width() -> None:
    f = Frame(np.zeros((120, 160, 3), np.uint8), stamp_ns=5, frame_id="cam", index=2)
    assert f.size == (120, 160)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((120, 160), np.uint8),  # grey, no channel axis
        np.zeros((120, 160, 4), np.uint8),  # RGBA
        np.zeros((120, 160, 1), np.uint8),
        np.zeros((120, 160, 3), np.float32),  # wrong dtype
        np.zeros((120, 160, 3), np.uint16),
    ],
    ids=["grey", "rgba", "one-channel", "float32", "uint16"],
)
def test_frame_rejects_anything_but_hxwx3_uint8(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"HxWx3 uint8"):
        Frame(image, stamp_ns=0)


@pytest.mark.parametrize("shape", [(0, 160, 3), (120, 0, 3)])
def test_frame_rejects_an_empty_image(shape: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="empty"):
        Frame(np.zeros(shape, np.uint8), stamp_ns=0)


# --- ClipBuffer --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 0, -3])
def test_buffer_shorter_than_two_frames_is_rejected(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        ClipBuffer(length)


def test_buffer_keeps_the_last_length_frames_oldest_first() -> None:
    buf = ClipBuffer(3)
    assert len(buf) == 0 and not buf.full
    for i in range(5):
        assert buf.push(blank_frame(i)) is None
        assert len(buf) == min(i + 1, 3)
    assert buf.full
    assert [f.index for f in buf] == [2, 3, 4]
    assert buf.newest.index == 4
    assert buf[-2].index == 3 and buf[0].index == 2


def test_resolution_change_resets_and_keeps_only_the_new_frame() -> None:
    buf = ClipBuffer(4)
    for i in range(3):
        buf.push(blank_frame(i, shape=(120, 160)))
    reset = buf.push(blank_frame(3, shape=(240, 320)))
    assert isinstance(reset, BufferReset)
    assert reset.reason == "resolution"
    assert "160x120" in reset.detail and "320x240" in reset.detail
    assert len(buf) == 1 and buf.newest.size == (240, 320)
    # The new resolution is now the norm: the next frame at it continues the stream.
    assert buf.push(blank_frame(4, shape=(240, 320))) is None
    assert len(buf) == 2


def test_stamp_going_backwards_resets() -> None:
    buf = ClipBuffer(4)
    for i in range(5, 8):
        buf.push(blank_frame(i))
    reset = buf.push(blank_frame(2))  # a bag that loops back to its start
    assert reset is not None and reset.reason == "stamp"
    assert [f.index for f in buf] == [2]


def test_repeated_stamp_resets() -> None:
    buf = ClipBuffer(4)
    buf.push(blank_frame(0))
    buf.push(blank_frame(1))
    reset = buf.push(blank_frame(1))
    assert reset is not None and reset.reason == "stamp"
    assert len(buf) == 1


def test_frame_one_nanosecond_later_is_continuous() -> None:
    buf = ClipBuffer(2)
    img = np.zeros((120, 160, 3), np.uint8)
    buf.push(Frame(img, stamp_ns=1000))
    assert buf.push(Frame(img, stamp_ns=1001)) is None
    assert len(buf) == 2


def test_resolution_is_checked_before_stamp() -> None:
    buf = ClipBuffer(3)
    buf.push(blank_frame(5, shape=(120, 160)))
    reset = buf.push(blank_frame(1, shape=(60, 80)))  # both broken: resolution is the reason given
    assert reset is not None and reset.reason == "resolution"


def test_clear_empties_without_a_reset_on_next_push() -> None:
    buf = ClipBuffer(3)
    buf.push(blank_frame(4))
    buf.clear()
    assert len(buf) == 0
    assert buf.push(blank_frame(0)) is None  # nothing buffered to compare with


def test_stamp_jumping_too_far_ahead_resets_when_a_limit_is_set() -> None:
    buf = ClipBuffer(4, max_stamp_jump_ns=10 * 10**9)
    img = np.zeros((120, 160, 3), np.uint8)
    buf.push(Frame(img, stamp_ns=10**9))
    assert buf.push(Frame(img, stamp_ns=11 * 10**9)) is None  # exactly the limit: continuous
    reset = buf.push(Frame(img, stamp_ns=11 * 10**9 + 10**7 * 10**9))  # 10^7 s ahead
    assert reset is not None and reset.reason == "stamp_jump" and "1e+07 s" in reset.detail
    assert len(buf) == 1
    assert ClipBuffer(4).push(Frame(img, stamp_ns=0)) is None
    unlimited = ClipBuffer(4)
    unlimited.push(Frame(img, stamp_ns=0))
    assert unlimited.push(Frame(img, stamp_ns=10**18)) is None


def test_frames_older_than_the_newest_two_are_kept_at_the_work_width() -> None:
    buf = ClipBuffer(8, thumb_width=160)
    big = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), np.uint8)
    for i in range(8):
        buf.push(Frame(big, stamp_ns=i + 1, frame_id="cam", index=i))
    assert [f.size for f in buf] == [(120, 160)] * 6 + [(900, 1200)] * 2
    assert [(f.index, f.stamp_ns, f.frame_id) for f in buf] == [(i, i + 1, "cam") for i in range(8)]
    held = sum(f.image.nbytes for f in buf)
    assert held < 2.2 * big.nbytes, f"buffer holds {held} bytes for 8 frames of {big.nbytes}"
    assert buf.push(Frame(big, stamp_ns=9, index=8)) is None  # the newest is compared at full size
    small = ClipBuffer(4, thumb_width=320)
    for i in range(4):
        small.push(blank_frame(i, shape=(120, 160)))
    assert all(f.size == (120, 160) for f in small)  # never enlarged


def test_a_frame_is_resized_once_per_width_and_the_buffer_reuses_it() -> None:
    big = np.random.default_rng(1).integers(0, 256, (480, 640, 3), np.uint8)
    frame = Frame(big, stamp_ns=1)
    work = frame.at_width(424)
    assert work.shape == (318, 424, 3)
    assert np.array_equal(work, cv2.resize(big, (424, 318), interpolation=cv2.INTER_AREA))
    assert frame.at_width(424) is work  # made once
    assert frame.at_width(640) is big and frame.at_width(2000) is big  # never enlarged
    buf = ClipBuffer(4, thumb_width=424)
    for i in range(3):
        buf.push(frame if i == 0 else Frame(big, stamp_ns=i + 1))
    assert buf[0].image is work  # the thumbnail is the segmenter's work image, not a second resize


def test_frame_extras_must_match_the_image() -> None:
    from movseg_ros.camera_model import Intrinsics

    img = np.zeros((48, 64, 3), np.uint8)
    k = Intrinsics(50.0, 50.0, 31.5, 23.5, 64, 48)
    Frame(img, 0, depth=np.ones((48, 64), np.float32), intrinsics=k, rotation=np.eye(3))
    with pytest.raises(ValueError, match="depth"):
        Frame(img, 0, depth=np.ones((24, 32), np.float32))
    with pytest.raises(ValueError, match="depth"):
        Frame(img, 0, depth=np.ones((48, 64), np.float64))
    with pytest.raises(ValueError, match="intrinsics are for 32x24"):
        Frame(img, 0, intrinsics=k.scaled(32, 24))
    with pytest.raises(ValueError, match="rotation"):
        Frame(img, 0, rotation=np.eye(4))
    with pytest.raises(ValueError, match="focal"):
        Intrinsics(0.0, 50.0, 1.0, 1.0, 64, 48)
    assert k.scaled(32, 24).matrix[0, 0] == 25.0 and k.scaled(32, 24).cx == 15.5
