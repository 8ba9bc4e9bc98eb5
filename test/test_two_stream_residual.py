"""The two-stream motion stream on camera-compensated flow (DetectorArch.motion_input: residual), and the
segmenter's inference settings (proposals, boxes under min_score never given masks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.segmenters.two_stream import TwoStreamConfig, TwoStreamSegmenter
from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.config import preset
from movseg_ros.two_stream.arch import ArchError, DetectorArch
from movseg_ros.two_stream.davis_data import DavisDetectionData
from movseg_ros.two_stream.inputs import check_motion_input, flow_tensor, motion_flow

W, H, SIDE = 96, 64, 20
PAN, MOVE = (-3, 0), (2, 1)  # the background slides left 3 px a frame (the camera pans); the square moves (2, 1)


def panning_flow() -> tuple[np.ndarray, np.ndarray]:
    """A camera pan everywhere plus an object moving its own way: (flow HxWx2, object mask)."""
    flow = np.zeros((H, W, 2), np.float32)
    flow[...] = (4.0, -1.5)
    mask = np.zeros((H, W), bool)
    mask[20:40, 30:55] = True
    flow[mask] = (-2.0, 3.0)
    return flow, mask


def test_residual_leaves_a_panning_background_still_and_the_mover_moving() -> None:
    flow, mask = panning_flow()
    assert motion_flow(flow, "flow") is flow
    residual = motion_flow(flow, "residual")
    assert residual.shape == flow.shape
    assert np.abs(residual[~mask]).max() < 0.05  # the camera's motion is taken out
    assert np.allclose(residual[mask], (-6.0, 4.5), atol=0.05)  # what the object does beyond the camera
    raw_img, res_img = flow_tensor(flow), flow_tensor(residual)
    mag_raw, mag_res = raw_img[1].numpy(), res_img[1].numpy()
    assert mag_raw[~mask].mean() > 0.5  # seed 000's image: the pan is as bright as the mover
    assert mag_res[~mask].mean() < 0.02 and mag_res[mask].mean() > 0.9
    with pytest.raises(ValueError, match="motion input 'depth'"):
        check_motion_input("depth")
    with pytest.raises(ValueError, match="motion input 'depth'"):
        motion_flow(flow, "depth")


def test_motion_input_is_an_architecture_setting_and_old_files_read_as_flow() -> None:
    with pytest.raises(ArchError, match="motion_input 'depth'"):
        DetectorArch(motion_input="depth")
    old = DetectorArch.imagenet().to_dict()
    del old["motion_input"]  # a file written before the setting existed
    assert DetectorArch.from_dict(old).motion_input == "flow"
    assert DetectorArch.from_dict({**old, "motion_input": "residual"}).motion_input == "residual"


def write_panning_sequence(root: Path, frames: int = 3) -> None:
    """A textured background the camera pans over and a textured square moving its own way, with masks."""
    rng = np.random.default_rng(3)
    world = cv2.GaussianBlur(rng.integers(0, 256, (H, W + 40, 3)).astype(np.uint8), (0, 0), 1.2)
    square = rng.integers(0, 256, (SIDE, SIDE, 3)).astype(np.uint8)
    (root / "pan" / "JPEGImages").mkdir(parents=True)
    (root / "pan" / "Annotations").mkdir(parents=True)
    for t in range(frames):
        x0 = -PAN[0] * t
        image = np.ascontiguousarray(world[:, x0:x0 + W])
        mask = np.zeros((H, W), np.uint8)
        x, y = 30 + MOVE[0] * t, 20 + MOVE[1] * t
        image[y:y + SIDE, x:x + SIDE] = square
        mask[y:y + SIDE, x:x + SIDE] = 255
        cv2.imwrite(str(root / "pan" / "JPEGImages" / f"{t:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 98])
        cv2.imwrite(str(root / "pan" / "Annotations" / f"{t:05d}.png"), mask)


def test_davis_items_carry_the_residual_when_the_architecture_asks(tmp_path: Path) -> None:
    write_panning_sequence(tmp_path / "davis")
    items = {m: DavisDetectionData(tmp_path / "davis", "motion", work_width=W, augment=False, motion_input=m)[0]
             for m in ("flow", "residual")}
    masks = items["flow"]["target"]["masks"]
    assert masks.shape[0] == 1
    obj = masks[0].numpy().astype(bool)
    inner = cv2.erode(obj.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    back = ~cv2.dilate(obj.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    back[:, :8] = back[:, -8:] = False  # DIS's borders
    mag = {m: item["input"][1].numpy() for m, item in items.items()}
    assert np.median(mag["flow"][back]) > 0.4  # the pan fills the flow image
    assert np.median(mag["residual"][back]) < 0.25 * np.median(mag["flow"][back])
    assert np.median(mag["residual"][inner]) > 3 * np.median(mag["residual"][back])
    with pytest.raises(ValueError, match="motion input 'depth'"):
        DavisDetectionData(tmp_path / "davis", "motion", work_width=W, motion_input="depth")


def test_segmenter_reads_the_files_motion_input_and_its_proposal_and_score_settings(tiny_two_stream) -> None:
    seg = TwoStreamSegmenter(TwoStreamConfig(weights=str(tiny_two_stream.joint), accelerator="eager",
                                             proposals=40, min_score=0.3, work_width=96))
    assert seg.motion_input == "flow"  # the tiny files predate nothing: their arch says flow
    for rpn, heads in ((seg.model.rpn, seg.model.roi_heads), (seg.model.static_rpn, seg.model.static_roi_heads)):
        assert rpn._post_nms_top_n["testing"] == 40
        assert heads.score_thresh < np.float32(0.3) and np.float32(heads.score_thresh) == np.nextafter(np.float32(0.3), -1)
    for bad in ({"proposals": 5}, {"proposals": 5000}):
        with pytest.raises(ValueError, match="two_stream.proposals"):
            TwoStreamConfig(**bad)


def test_boxes_under_min_score_are_never_given_masks_and_the_rest_are_unchanged(tiny_two_stream) -> None:
    """The heads' score threshold at min_score changes what is computed, not what is kept: the detections at or
    over min_score are the ones the 0.05 threshold keeps, with the same masks."""
    clip = generate_clip(preset("motion").replace(width=128, height=96, frames=2, texture_source="skimage"), 5)
    x = torch.cat([torch.from_numpy(clip.images[1].transpose(2, 0, 1)).float() / 255,
                   flow_tensor(clip.flow[0])], 0)
    seg = TwoStreamSegmenter(TwoStreamConfig(weights=str(tiny_two_stream.joint), accelerator="eager", min_score=0.0,
                                             work_width=128))
    model = seg.model
    model.transform.min_size, model.transform.max_size = (96,), 128
    with torch.inference_mode():
        model.roi_heads.score_thresh = model.static_roi_heads.score_thresh = 0.0
        every = model([x])[0]
        scores = torch.cat([every["moving"]["scores"], every["static"]["scores"]])
        assert len(scores) >= 4, "the tiny model should give some detections to compare"
        cut = float(scores.median())  # one of the scores: a box exactly at min_score is kept
        seg = TwoStreamSegmenter(TwoStreamConfig(weights=str(tiny_two_stream.joint), accelerator="eager",
                                                 min_score=cut, work_width=128))
        seg.model.transform.min_size, seg.model.transform.max_size = (96,), 128
        kept = seg.model([x])[0]
    for branch in ("moving", "static"):
        over = every[branch]["scores"] >= cut
        assert torch.equal(kept[branch]["scores"], every[branch]["scores"][over])
        assert torch.allclose(kept[branch]["masks"], every[branch]["masks"][over], atol=1e-5)
    assert len(kept["moving"]["scores"]) + len(kept["static"]["scores"]) < len(scores)


def test_residual_streams_train_record_their_input_and_the_joint_checks_it(tiny_two_stream, tmp_path: Path,
                                                                             capsys) -> None:
    """A motion stage with motion_input residual writes it into its file; the segmenter then feeds that file the
    residual; the joint stage takes the (flow) appearance file beside it, but refuses a motion file of the other
    input, naming it."""
    from two_stream_helpers import train_stage

    residual = "arch={motion_input: residual}"
    assert train_stage("motion", tmp_path / "motion", "--set", residual) == 0
    motion = tmp_path / "motion" / "w.pt"
    seg = TwoStreamSegmenter(TwoStreamConfig(weights=str(motion), accelerator="eager", work_width=96))
    assert seg.kind == "motion" and seg.motion_input == "residual"
    assert train_stage("joint", tmp_path / "joint", "--set", residual, "--set", f"motion_weights={motion}",
                       "--set", f"appearance_weights={tiny_two_stream.appearance}",
                       "--set", "detector_from=motion") == 0
    joint = TwoStreamSegmenter(TwoStreamConfig(weights=str(tmp_path / "joint" / "w.pt"), accelerator="eager",
                                               work_width=96))
    assert joint.kind == "two_stream" and joint.motion_input == "residual"
    capsys.readouterr()
    assert train_stage("joint", tmp_path / "bad", "--set", residual,
                       "--set", f"motion_weights={tiny_two_stream.motion}",
                       "--set", f"appearance_weights={tiny_two_stream.appearance}") == 2
    err = capsys.readouterr().err
    assert str(tiny_two_stream.motion) in err and "'motion_input': 'flow'" in err


def test_the_reports_ablation_feeds_each_file_the_motion_it_reads(tiny_two_stream, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`movseg report two-stream` scores each file on the motion input recorded in it: a residual file is not
    scored on raw flow."""
    from movseg_ros.two_stream import report

    ckpt = torch.load(tiny_two_stream.motion, weights_only=False)
    ckpt["meta"]["arch_settings"] = {**ckpt["meta"]["arch_settings"], "motion_input": "residual"}
    residual = tmp_path / "motion_residual.pt"
    torch.save(ckpt, residual)
    models = {"motion": report.read_weights(residual, "motion"),
              "appearance": report.read_weights(tiny_two_stream.appearance, "appearance"),
              "joint": report.read_weights(tiny_two_stream.joint, "joint")}
    assert models["motion"][1].motion_input == "residual" and models["joint"][1].motion_input == "flow"
    assert models["motion"][1].to_dict()["motion_input"] == "residual"
    seen: list[tuple[str, str]] = []
    real = report.SynthDetectionData

    def recording(*args, **kwargs):
        data = real(*args, **kwargs)
        seen.append((data.kind, data.motion_input))
        return data

    monkeypatch.setattr(report, "SynthDetectionData", recording)
    split = report.heldout_split(models["joint"][1])
    rows = report.score_ablation(split, models, images=1)
    assert len(rows) == len(report.ROWS)
    assert ("motion", "residual") in seen and ("two_stream", "flow") in seen
