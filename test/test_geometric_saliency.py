"""The geometric pipeline with its appearance prior (`geometric.appearance: saliency`) on the built-in scene.

The network is replaced by an oracle (the scene's true object masks, or only some of them) so the tests
pin down the fusion rules, not a network's quality: motion decides what moves, saliency gives extent, a
salient object that never moves is never reported as moving, a stopped object is kept by the static
branch, and a mover that nobody finds salient is still found from motion alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from core_helpers import iou

from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.saliency.schedule import ScheduledSaliency
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.base import resize_to_width
from movseg_ros.segmenters.geometric import GeometricConfig

SCENE = SceneConfig(width=320, height=240, frames=36, stop_frame=18, seed=0)
WARM_UP = 4


class Oracle:
    """Saliency = the scene's truth of the given roles, looked up by the work-size frame it is given."""

    def __init__(self, scene, roles: tuple[str, ...], work_width: int) -> None:
        self.maps = {}
        for img, ids in zip(scene.frames, scene.ids):
            small = resize_to_width(img, work_width)
            truth = np.isin(ids, [scene.roles[r] for r in roles]).astype(np.uint8) * 255
            self.maps[hashlib.sha1(small.tobytes()).hexdigest()] = resize_to_width(
                np.repeat(truth[..., None], 3, axis=2), work_width)[..., 0].astype(np.float32) / 255.0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self.maps[hashlib.sha1(rgb.tobytes()).hexdigest()]


def _run(roles: tuple[str, ...] | None, every: int = 2):
    scene = make_scene(SCENE)
    pipe = Pipeline(PipelineConfig())
    if roles is not None:
        pipe.segmenter.saliency = ScheduledSaliency(Oracle(scene, roles, pipe.config.geometric.work_width), every)
        pipe.segmenter.reset()
    period = int(1e9 / scene.fps)
    outs = [o for t, img in enumerate(scene.frames) for o in pipe.process(Frame(img, t * period, "cam", t))]
    return scene, outs


@pytest.fixture(scope="module")
def runs():
    return {"none": _run(None), "all": _run(("mover", "stopper", "static")), "mover_only": _run(("mover",))}


def _best(outs, scene, t: int, role: str):
    truth = scene.ids[t] == scene.roles[role]
    return max(outs[t].visible, key=lambda tr: iou(tr.mask, truth), default=None), truth


def test_saliency_gives_movers_their_extent(runs) -> None:
    means = {}
    for name in ("none", "all"):
        scene, outs = runs[name]
        scores = []
        for t in range(WARM_UP, SCENE.stop_frame):
            best, truth = _best(outs, scene, t, "mover")
            scores.append(iou(best.mask, truth) if best is not None else 0.0)
        means[name] = float(np.mean(scores))
    assert means["all"] >= 0.85 and means["all"] >= means["none"] - 0.01, means


def test_a_salient_object_that_never_moves_is_never_reported_as_moving(runs) -> None:
    scene, outs = runs["all"]
    static = scene.roles["static"]
    for t, o in enumerate(outs):
        truth = scene.ids[t] == static
        for tr in o.tracks:
            if tr.moving and tr.mask is not None:
                assert (tr.mask & truth).sum() < 0.1 * truth.sum(), f"frame {t}: track {tr.id} moves the static object"
    assert not any(iou(tr.mask, scene.ids[t] == static) > 0.5 for t, o in enumerate(outs) for tr in o.visible), \
        "static evidence never starts a track"


def test_the_stopper_is_kept_through_its_stop_with_one_id(runs) -> None:
    scene, outs = runs["all"]
    ids = []
    for t in range(WARM_UP, SCENE.frames):
        best, truth = _best(outs, scene, t, "stopper")
        assert best is not None and iou(best.mask, truth) >= 0.5, f"frame {t}: stopper lost"
        ids.append(best.id)
        if t >= SCENE.stop_frame + 3:
            assert not best.moving, f"frame {t}: stopper stopped at {SCENE.stop_frame}"
    assert len(set(ids)) == 1


def test_a_mover_no_salient_segment_covers_is_still_found_from_motion(runs) -> None:
    scene, outs = runs["mover_only"]
    found = [(_best(outs, scene, t, "stopper")[0] is not None
              and iou(_best(outs, scene, t, "stopper")[0].mask, scene.ids[t] == scene.roles["stopper"]) >= 0.5)
             for t in range(WARM_UP, SCENE.stop_frame)]
    assert np.mean(found) >= 0.8


def test_bad_appearance_settings_and_a_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geometric.appearance 'crf'"):
        GeometricConfig(appearance="crf")
    with pytest.raises(ValueError, match="saliency_every"):
        GeometricConfig(saliency_every=0)
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="geometric.saliency_weights") as e:
        Pipeline(PipelineConfig(geometric=GeometricConfig(appearance="saliency", saliency_weights=str(missing))))
    assert str(missing) in str(e.value) and "no such file" in str(e.value)


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_the_node_refuses_a_corrupt_saliency_file_with_one_line(node_env, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from ros_helpers import assert_refuses_corrupt_shipped

    assert_refuses_corrupt_shipped(node_env, tmp_path, "saliency_mobilenet_v2.pt", "geometric.saliency_weights",
                                   "/sal_test/image", ("geometric.appearance:=saliency",))
