"""Overlay drawing, contact sheets and video writing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.output import TrackState, TrackStatus, label_map_of
from movseg_ros.overlay import contact_sheet, draw_overlay, label_box, track_colour, write_video
from movseg_ros.scene import SceneConfig, make_scene


def track(tid: int, mask: np.ndarray | None, moving: bool = True, box: tuple[int, int, int, int] | None = None) -> TrackState:
    if box is None and mask is not None:
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    status = TrackStatus.VISIBLE if mask is not None else TrackStatus.LOST
    return TrackState(tid, mask, box or (0, 0, 0, 0), 0.9, moving, status, 5, 5, (0.0, 0.0))


@pytest.fixture(scope="module")
def picture() -> tuple[np.ndarray, list[TrackState], np.ndarray]:
    scene = make_scene(SceneConfig(width=320, height=240, frames=1, seed=1))
    tracks = [track(7, scene.ids[0] == 1, True), track(12, scene.ids[0] == 3, False)]
    return scene.frames[0], tracks, label_map_of(tracks, (240, 320))


def test_colours_are_stable_and_distinct() -> None:
    assert track_colour(5) == track_colour(5)
    colours = [track_colour(i) for i in range(1, 21)]
    assert len(set(colours)) == 20
    for i in range(len(colours) - 1):  # consecutive ids, the common case, are far apart
        assert np.abs(np.subtract(colours[i], colours[i + 1])).sum() > 60


def test_overlay_changes_only_masks_and_text(picture) -> None:
    image, tracks, labels = picture
    before = image.copy()
    out = draw_overlay(image, labels, tracks)
    assert np.array_equal(image, before)  # the input is not drawn on
    assert out.shape == image.shape and out.dtype == np.uint8
    allowed = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    for t in tracks:
        x0, y0, x1, y1 = label_box(f"{t.id} {'M' if t.moving else 'S'}", t.box, image.shape)
        allowed[y0:y1, x0:x1] = True
    changed = np.any(out != image, axis=2)
    assert not changed[~allowed].any()
    for t in tracks:  # each mask is tinted towards its own colour
        inside = labels == t.id
        assert changed[inside].mean() > 0.9
        shift = out[inside].astype(float).mean(axis=0) - image[inside].astype(float).mean(axis=0)
        towards = np.array(track_colour(t.id), float) - image[inside].astype(float).mean(axis=0)
        assert float(shift @ towards) > 0


def test_overlay_writes_id_and_motion_state(picture) -> None:
    image, tracks, labels = picture
    moving_text = draw_overlay(image, labels, tracks)
    tracks_static = [track(t.id, t.mask, moving=False) for t in tracks]
    static_text = draw_overlay(image, labels, tracks_static)
    x0, y0, x1, y1 = label_box("7 M", tracks[0].box, image.shape)
    assert not np.array_equal(moving_text[y0:y1, x0:x1], static_text[y0:y1, x0:x1])


def test_lost_and_absent_tracks_draw_nothing(picture) -> None:
    image, _, _ = picture
    lost = track(3, None, box=(10, 10, 60, 60))
    out = draw_overlay(image, np.zeros(image.shape[:2], np.uint16), [lost])
    assert np.array_equal(out, image)


def test_contact_sheet_size_and_captions() -> None:
    images = [np.full((240, 320, 3), 40 * i, np.uint8) for i in range(5)]
    sheet = contact_sheet(images, columns=3, width=600)
    assert sheet.shape == (2 * 150, 600, 3) and sheet.dtype == np.uint8
    first = sheet[:150, :200]
    assert (first > 200).any()  # the white caption is drawn on the black thumbnail
    assert np.all(sheet[150:, 400:] == 0)  # the missing sixth cell stays empty
    with pytest.raises(ValueError):
        contact_sheet([], columns=2, width=100)


def test_write_video_reads_back(tmp_path: Path) -> None:
    frames = make_scene(SceneConfig(width=160, height=120, frames=12)).frames
    written = write_video(tmp_path / "clip.mp4", frames, fps=10)
    assert written.exists() and written.stat().st_size > 0
    cap = cv2.VideoCapture(str(written))
    count = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        assert bgr.shape == (120, 160, 3)
        count += 1
    cap.release()
    assert count == 12


def test_write_video_falls_back_then_fails_clearly(tmp_path: Path) -> None:
    frames = [np.zeros((48, 64, 3), np.uint8)] * 3
    written = write_video(tmp_path / "clip.mp4", frames, 5, codecs=(("XXXX", ".mp4"), ("MJPG", ".avi")))
    assert written.suffix == ".avi" and written.stat().st_size > 0
    missing = tmp_path / "no_such_folder" / "clip.mp4"
    with pytest.raises(RuntimeError, match="no_such_folder"):
        write_video(missing, frames, 5)
