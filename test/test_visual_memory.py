"""Seed 003's visual memory: the ConvGRU's recurrence, the bidirectional pass, the weights file, the
stop-and-go runs, BPTT training that resumes exactly, and the segmenter online and offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from movseg_ros.cli import main
from movseg_ros.frame import Frame
from movseg_ros.model_files import ModelFileError
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.visual_memory.data import MemoryRuns, RunAugment, SequenceInputs
from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, save_mpnet
from movseg_ros.visual_memory.network import ConvGRUCell, MemoryArch, VisualMemoryNet, load_memory, save_memory
from memory_runs import tiny_memory_run
from scene_davis import scene_davis

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = Path(__file__).resolve().parent.parent / "config"
SCENE = SceneConfig(width=160, height=120, frames=12)
TINY = MemoryArch(appearance=8, state=8)


def _inputs(t: int = 5, c: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, t, c, 6, 8, generator=torch.Generator().manual_seed(seed))


def test_the_gru_carries_what_it_saw_and_online_steps_are_the_run() -> None:
    torch.manual_seed(0)
    cell = ConvGRUCell(3, 4, 3)
    pulse = torch.zeros(6, 1, 3, 5, 5)
    pulse[0] = 1.0
    h_pulse = h_zero = None
    for t in range(6):
        h_pulse, h_zero = cell(pulse[t], h_pulse), cell(torch.zeros(1, 3, 5, 5), h_zero)
    assert (h_pulse - h_zero).abs().max() > 1e-3  # five silent frames later the state still differs
    net = VisualMemoryNet(TINY).eval()
    xs = _inputs()
    online, _ = net.run(xs, offline=False)
    h, steps = None, []
    for t in range(xs.shape[1]):
        h, logits = net.step(xs[:, t], h)
        steps.append(logits)
    assert torch.allclose(torch.stack(steps, 1), online, atol=1e-6)


def test_offline_frames_see_the_future_and_online_ones_do_not() -> None:
    torch.manual_seed(0)
    net = VisualMemoryNet(TINY).eval()
    xs = _inputs()
    changed = xs.clone()
    changed[:, -1] += 3.0
    with torch.no_grad():
        on_a, off_a = net.run(xs)
        on_b, off_b = net.run(changed)
    assert torch.equal(on_a[:, 0], on_b[:, 0])
    assert (off_a[:, 0] - off_b[:, 0]).abs().max() > 1e-4
    # shared weights: the backward direction is the same GRU run on the reversed inputs
    rev_online, _ = net.run(xs.flip(1), offline=False)
    fw = [None]
    for t in range(xs.shape[1]):
        fw.append(net.gru(xs[:, t], fw[-1]))
    bw = [None]
    for t in reversed(range(xs.shape[1])):
        bw.append(net.gru(xs[:, t], bw[-1]))
    assert torch.allclose(net.online_head(bw[-1]), rev_online[:, -1], atol=1e-6)
    expect = net.offline_head(torch.cat([fw[1], bw[-1]], 1))
    assert torch.allclose(expect, off_a[:, 0], atol=1e-6)


def test_the_averaged_offline_pass_is_the_online_head_run_both_ways() -> None:
    from movseg_ros.visual_memory.predictor import MemoryInput, OnlineMemory

    torch.manual_seed(0)
    net = VisualMemoryNet(TINY).eval()
    memory = OnlineMemory(net)
    xs = _inputs(t=5)
    s4, motion = torch.zeros(1, 24, 12, 16), torch.zeros(1, 1, 12, 16)
    frames = [MemoryInput(xs[:, t], s4, motion) for t in range(5)]
    with torch.no_grad():
        forward, _ = net.run(xs, offline=False)
        backward, _ = net.run(xs.flip(1), offline=False)
    expect = (torch.sigmoid(forward) + torch.sigmoid(backward.flip(1)))[0, :, 0] / 2
    averaged = torch.sigmoid(torch.from_numpy(memory.both_ways(frames, "average")))
    assert torch.allclose(averaged, expect, atol=1e-5)
    changed = [MemoryInput(f.x.clone(), s4, motion) for f in frames]
    changed[-1].x += 3.0
    assert np.abs(memory.both_ways(changed, "average")[0] - memory.both_ways(frames, "average")[0]).max() > 1e-4
    with torch.no_grad():
        _, head = net.run(xs, offline=True)
    assert np.allclose(memory.both_ways(frames, "head"), head[0, :, 0].numpy(), atol=1e-6)


def test_the_fine_decoder_steps_online_as_its_run_at_stride_4() -> None:
    from movseg_ros.visual_memory.predictor import MemoryInput, OnlineMemory

    torch.manual_seed(0)
    net = VisualMemoryNet(MemoryArch(appearance=8, state=8, fine=4)).eval()
    xs = _inputs()
    s4, motion = torch.randn(1, 5, 24, 12, 16), torch.rand(1, 5, 1, 12, 16)
    with torch.no_grad():
        online, _ = net.run(xs, offline=False, s4=s4, motion=motion)
        coarse, _ = net.run(xs, offline=False)
        changed = s4.clone()
        changed[:, -1] += 3.0
        later, _ = net.run(xs, offline=False, s4=changed, motion=motion)
    assert online.shape == (1, 5, 1, 12, 16) and coarse.shape == (1, 5, 1, 6, 8)
    assert torch.equal(online[:, :4], later[:, :4]) and (online[:, 4] - later[:, 4]).abs().max() > 1e-4
    memory = OnlineMemory(net)
    frames = [MemoryInput(xs[:, t], s4[:, t], motion[:, t]) for t in range(5)]
    steps = np.stack([memory.step(f) for f in frames])
    assert np.allclose(steps, online[0, :, 0].numpy(), atol=1e-5)
    with torch.no_grad():
        backward, _ = net.run(xs.flip(1), offline=False, s4=s4.flip(1), motion=motion.flip(1))
    expect = (torch.sigmoid(online) + torch.sigmoid(backward.flip(1)))[0, :, 0] / 2
    assert torch.allclose(torch.sigmoid(torch.from_numpy(memory.both_ways(frames, "average"))), expect, atol=1e-5)
    with pytest.raises(ValueError, match="fine"):
        MemoryArch(fine=-1)


def _bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-cell bars at stride 4 (a stride-8 cell holds half bar, half background, either half alike): the
    targets, the logits a perfect stride-8 head could give, and 23 channels of noise."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.zeros(n, 1, 16, 16)
    for k in range(n):
        y, x = (int(v) for v in torch.randint(0, 10, (2,), generator=gen))
        if k % 2:
            target[k, 0, y, x:x + 6] = 1.0
        else:
            target[k, 0, y:y + 6, x] = 1.0
    coarse = torch.logit(F.avg_pool2d(target, 2).clamp(0.02, 0.98))
    return target, coarse, torch.randn(n, 23, 16, 16, generator=gen)


def test_the_fine_decoder_learns_edges_a_stride_8_map_cannot_hold() -> None:
    from movseg_ros.visual_memory.network import FineDecoder

    def iou(logits: torch.Tensor, target: torch.Tensor) -> float:
        pred, truth = logits > 0, target > 0.5
        return float((pred & truth).sum() / (pred | truth).sum())

    def held_out_iou(edges: bool) -> float:
        """Trained on one set of bars, scored on another; `edges`: the bars show in the appearance features."""
        torch.manual_seed(0)
        decoder = FineDecoder(8, 24, 1, 8)
        opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
        sets = []
        for seed in (1, 2):
            target, coarse, noise = _bars(32, seed)
            s4 = torch.cat([(target * 2 - 1) if edges else torch.zeros_like(target), noise], 1)
            sets.append((target, (coarse, torch.zeros(32, 8, 8, 8), s4, torch.zeros(32, 1, 16, 16))))
        (target, inputs), (test_target, test_inputs) = sets
        for _ in range(150):
            loss = F.binary_cross_entropy_with_logits(decoder(*inputs), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return iou(decoder(*test_inputs), test_target)

    target, coarse, _ = _bars(32, 2)
    upsampled = iou(F.interpolate(coarse, size=(16, 16), mode="bilinear", align_corners=False), target)
    with_edges, blind = held_out_iou(True), held_out_iou(False)
    assert with_edges > max(upsampled, blind) + 0.2, (with_edges, upsampled, blind)


def test_the_weights_file_round_trips_and_bad_files_are_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = VisualMemoryNet(TINY).eval()
    save_memory(tmp_path / "m.pt", net, {"note": "x"}, half=False)
    back, meta = load_memory(tmp_path / "m.pt")
    xs = _inputs()
    assert meta["note"] == "x" and back.arch == TINY
    assert torch.allclose(back.run(xs)[1], net.run(xs)[1])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    save_mpnet(tmp_path / "mp.pt", MPNet(MPNetArch()), {})
    for bad in ("bad.pt", "mp.pt"):
        with pytest.raises(ModelFileError, match=bad):
            load_memory(tmp_path / bad)
    with pytest.raises(ValueError, match="kernel"):
        MemoryArch(kernel=4)


def test_frozen_graphs_give_the_eager_outputs_one_graph_per_shape() -> None:
    from movseg_ros.accel.frozen import MAX_SHAPES, PerShapeFrozen
    from movseg_ros.visual_memory.network import AppearanceEncoder

    torch.manual_seed(0)
    encoder = AppearanceEncoder().eval()
    frozen = PerShapeFrozen(encoder)
    for size in ((64, 96), (48, 80), (64, 96)):
        x = torch.rand(1, 3, *size) * 255
        with torch.no_grad():
            for a, b in zip(encoder(x), frozen(x)):
                assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4)
    assert len(frozen._graphs) == 2
    small = PerShapeFrozen(torch.nn.Conv2d(3, 2, 3))
    for k in range(MAX_SHAPES + 1):
        small(torch.rand(1, 3, 8 + k, 8))
    assert len(small._graphs) == MAX_SHAPES and (1, 3, 8, 8) not in [key[0] for key in small._graphs]


def _sequence(n: int = 6) -> SequenceInputs:
    rng = np.random.default_rng(0)
    masks = np.zeros((n, 8, 12), bool)
    for k in range(n):
        masks[k, 2:6, k:k + 3] = True
    motion = np.stack([np.full((2, 1, 2, 3), 0.1 * (k + 1), np.float16) for k in range(n)])
    return SequenceInputs("s", rng.random((n, 2, 24, 2, 3)).astype(np.float16), rng.random((n, 2, 32, 1, 2)).astype(np.float16),
                          rng.random((n, 2, 96, 1, 1)).astype(np.float16), motion, masks,
                          np.full((1, 2, 3), -1.0, np.float16))


def test_stop_and_go_runs_hold_the_frame_without_motion_and_mirror_the_masks() -> None:
    seq = _sequence()
    plain = MemoryRuns([seq], 4, 50, seed=1, augment=RunAugment(stop=0.0, static_start=0.0, mirror=0.0))
    item = plain[0]
    assert torch.equal(item["online_target"], item["offline_target"]) and (item["motion"] > 0).all()
    stops = MemoryRuns([seq], 4, 50, seed=1, augment=RunAugment(stop=1.0, static_start=0.0, mirror=0.0))
    starts = MemoryRuns([seq], 4, 50, seed=1, augment=RunAugment(stop=0.0, static_start=1.0, mirror=0.0))
    for i in range(10):
        a = stops[i]
        held = (a["motion"] < 0).flatten(1).all(1)  # frames after the stop get the still map
        k = int(np.argmax(held.numpy())) - 1
        assert held.any() and not held[0] and held[k + 1:].all()
        assert all(torch.equal(a["s8"][t], a["s8"][k]) and torch.equal(a["offline_target"][t], a["offline_target"][k])
                   for t in range(k, 4))
        assert torch.equal(a["online_target"], a["offline_target"])  # a stopped object stays the object
        b = starts[i]
        still = (b["motion"] < 0).flatten(1).all(1)
        k = int(still.sum()) - 1  # frames 0..k show frame k, not moving yet
        assert still[:k + 1].all() and not still[k + 1:].any()
        assert b["online_target"][:k + 1].sum() == 0 and b["offline_target"][:k + 1].sum() > 0
        assert torch.equal(b["online_target"][k + 1:], b["offline_target"][k + 1:])
    mirrored = MemoryRuns([seq], 4, 20, seed=1, augment=RunAugment(stop=0.0, static_start=0.0, mirror=1.0))
    assert all(torch.equal(mirrored[i]["offline_target"], plain[i]["offline_target"].flip(-1)) for i in range(5))


def test_a_held_frame_loses_its_motion_but_keeps_its_saliency_map() -> None:
    seq = _sequence()
    salient = np.stack([np.full((2, 1, 2, 3), 0.05 * (k + 1), np.float16) for k in range(len(seq))])
    seq.motion = np.concatenate([seq.motion, salient], 2)  # MP-Net's map, then the saliency's; `still` covers the first
    stops = MemoryRuns([seq], 4, 20, seed=1, augment=RunAugment(stop=1.0, static_start=0.0, mirror=0.0))
    for i in range(8):
        item = stops[i]
        held = (item["motion"][:, 0] < 0).flatten(1).all(1)
        assert held.any() and not (item["motion"][:, 1] < 0).any()
        k = int(np.argmax(held.numpy())) - 1
        assert all(torch.equal(item["motion"][t, 1], item["motion"][k, 1]) for t in range(k, 4))  # the held frame's map


def test_crops_are_one_window_at_every_stride() -> None:
    n, h8, w8 = 4, 6, 8
    yy, xx = np.mgrid[0:h8, 0:w8]
    s8 = np.broadcast_to((100 * yy + xx).astype(np.float16), (n, 2, 32, h8, w8)).copy()
    s16 = np.broadcast_to((100 * yy[::2, ::2] + xx[::2, ::2]).astype(np.float16), (n, 2, 96, h8 // 2, w8 // 2)).copy()
    r4, c4 = np.mgrid[0:2 * h8, 0:2 * w8]
    motion = np.broadcast_to((100 * (r4 // 2) + c4 // 2).astype(np.float16) / 1000, (n, 2, 1, 2 * h8, 2 * w8)).copy()
    r, c = np.mgrid[0:8 * h8, 0:8 * w8]
    masks = np.broadcast_to((r // 8 + 3 * (c // 8)) % 2 == 0, (n, 8 * h8, 8 * w8)).copy()
    s4 = np.broadcast_to(motion[:, :, :1] * 1000, (n, 2, 24, 2 * h8, 2 * w8)).copy()
    seq = SequenceInputs("s", s4, s8, s16, motion, masks, np.zeros((1, 2 * h8, 2 * w8), np.float16))
    runs = MemoryRuns([seq], 2, 30, augment=RunAugment(stop=0.0, static_start=0.0, mirror=0.0), crop=(2, 4))
    corners = set()
    for i in range(30):
        item = runs[i]
        assert item["s8"].shape[-2:] == (2, 4) and item["s16"].shape[-2:] == (1, 2) and item["motion"].shape[-2:] == (4, 8)
        corner = int(item["s8"][0, 0, 0, 0])
        y, x = divmod(corner, 100)
        corners.add((y, x))
        assert y % 2 == 0 and x % 2 == 0 and int(item["s16"][0, 0, 0, 0]) == corner
        assert int(round(1000 * float(item["motion"][0, 0, 0, 0]))) == corner
        assert item["s4"].shape[-2:] == (4, 8) and int(item["s4"][0, 0, 0, 0]) == corner
        assert torch.equal(item["offline_target"][0, 0], torch.from_numpy(masks[0, 8 * y:8 * y + 16, 8 * x:8 * x + 32]).float())
    assert len(corners) > 3
    with pytest.raises(ValueError, match="does not fit"):
        MemoryRuns([seq], 2, 4, crop=(8, 4))


@pytest.mark.timeout(240)
def test_bptt_training_records_inputs_once_and_resumes_to_the_same_weights(tmp_path: Path, capsys) -> None:
    data, base = tiny_memory_run(tmp_path, SCENE)
    cache = tmp_path / "cache"
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(base + ["--out-dir", str(straight), "--json", str(tmp_path / "s.json")]) == 0
    recorded = sorted(cache.glob("*/*/*.npz"))
    assert [(p.parent.parent.name, p.name) for p in recorded] == [("appearance", "a.npz"), ("appearance", "b.npz"),
                                                                 ("motion", "a.npz"), ("motion", "b.npz")]
    stamps = [p.stat().st_mtime_ns for p in recorded]
    assert main(base + ["--out-dir", str(resumed), "--set", "stop_after=2"]) == 0
    assert main(base + ["--out-dir", str(resumed), "--resume"]) == 0
    assert [p.stat().st_mtime_ns for p in recorded] == stamps  # read back, not recorded again
    a, meta = load_memory(straight / "visual_memory.pt")
    b, _ = load_memory(resumed / "visual_memory.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["step"] == 4 and 0.0 <= summary["val_j_online"] <= 1.0 and summary["val_j_offline"] is not None
    assert meta["data"]["sequences"] == ["a"] and meta["data"]["held_aside"] == ["b"] and "CC BY-NC 4.0" in meta["licence"]
    recorded[0].write_bytes(b"not a cache")
    assert main(base + ["--out-dir", str(tmp_path / "again")]) == 2
    assert "a.npz" in capsys.readouterr().err
    (data / "a" / "Annotations" / "00003.png").unlink()  # a broken sequence: a frame without its mask
    assert main(base + ["--out-dir", str(tmp_path / "broken"), "--set", f"cache_dir={tmp_path / 'cache2'}"]) == 2
    assert "00003.png" in capsys.readouterr().err


def test_the_segmenter_runs_online_and_offline_and_names_a_missing_file(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    save_mpnet(tmp_path / "mp.pt", MPNet(MPNetArch()).eval(), {})
    net = VisualMemoryNet(TINY)
    with torch.no_grad():
        net.online_head.bias.fill_(8.0)  # everything is the object: one region, the whole frame
        net.offline_head.bias.fill_(-8.0)  # offline, nothing is
    save_memory(tmp_path / "vm.pt", net, {"mpnet_sha256": "0" * 64})  # learned from another MP-Net
    settings = {"weights": str(tmp_path / "vm.pt"), "mpnet_weights": str(tmp_path / "mp.pt"), "moving_min": 0.0}
    config = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": settings})
    frames = [Frame(img, i * 33_333_333, "scene", i) for i, img in enumerate(make_scene(SCENE).frames[:4])]
    pipeline = Pipeline(config)
    assert "learned from another MP-Net" in caplog.text
    outs = [r for f in frames for r in pipeline.segment(f)]
    assert len(outs) == 4 and all(len(r.detections) == 1 and r.detections[0].mask.all() for r in outs)
    assert all(r.detections[0].moving for r in outs)
    by_head = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {**settings, "offline": "head"}})
    offline = Pipeline(by_head).run_offline(frames)
    assert [o.frame.index for o in offline] == [0, 1, 2, 3] and not any(o.tracks for o in offline)
    averaged = Pipeline(config).run_offline(frames)  # the default: the online head both ways, which finds it all
    assert [o.frame.index for o in averaged] == [0, 1, 2, 3] and all(o.tracks for o in averaged[1:])
    with pytest.raises(ValueError, match="visual_memory.offline 'both'"):
        PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {"offline": "both"}})
    alone = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {**settings, "memory": False,
                                                                                    "weights": "/nowhere.pt"}})
    assert len(Pipeline(alone).run_offline(frames)) == 4  # MP-Net alone needs no memory file
    for key in ("weights", "mpnet_weights"):
        missing = {**settings, key: str(tmp_path / "nope.pt")}
        with pytest.raises((ModelFileError, FileNotFoundError, ValueError), match="nope.pt"):
            Pipeline(PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": missing}))
    with pytest.raises(ValueError, match="visual_memory.threshold"):
        PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {"threshold": 2.0}})
    with pytest.raises(ValueError, match="visual_memory.device 'gpu'"):
        PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {"device": "gpu"}})
    auto = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {**settings, "device": "auto"}})
    assert Pipeline(auto).device == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        cuda = PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": {**settings, "device": "cuda"}})
        with pytest.raises(ValueError, match="visual_memory.device.*no CUDA"):
            Pipeline(cuda)


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_the_node_refuses_a_corrupt_mpnet_file_with_one_line(node_env, tmp_path: Path) -> None:
    pytest.importorskip("rclpy")
    from ros_helpers import assert_refuses_corrupt_shipped

    assert_refuses_corrupt_shipped(node_env, tmp_path, "mpnet.pt", "visual_memory.mpnet_weights", "/vm_test/image",
                                   ("pipeline:=visual_memory",))


def test_the_shipped_files_record_their_data_and_track_the_built_in_scene() -> None:
    from movseg_ros.config_io import load_pipeline_config
    from movseg_ros.paths import share_dir
    from movseg_ros.tuning.data import HELD_ASIDE
    from movseg_ros.visual_memory.mpnet import load_mpnet

    _, meta = load_memory(share_dir() / "models" / "visual_memory.pt")
    _, mp_meta = load_mpnet(share_dir() / "models" / "mpnet.pt")
    for m, stage in ((meta, "visual_memory"), (mp_meta, "mpnet")):
        assert m["command"].startswith(f"movseg train {stage}") and "CC BY-NC 4.0" in m["licence"]
    assert meta["data"]["held_aside"] == sorted(HELD_ASIDE) and not set(meta["data"]["sequences"]) & set(HELD_ASIDE)
    scene = make_scene(SceneConfig(width=320, height=240, frames=16))
    pipeline = Pipeline(load_pipeline_config(CONFIG / "visual_memory.yaml"))
    mover, static = scene.roles["mover"], scene.roles["static"]
    mover_ids = []
    for t, image in enumerate(scene.frames):
        out = pipeline.process(Frame(image, t * 33_333_333, "scene", t))[0]
        assert not out.label_map[scene.ids[t] == static].any()  # the static object is never reported
        ids, counts = np.unique(out.label_map[scene.ids[t] == mover], return_counts=True)
        mover_ids.append(int(ids[counts.argmax()]))
    assert mover_ids[3] != 0 and set(mover_ids[3:]) == {mover_ids[3]}  # one id for the mover from frame 3 on


@pytest.mark.timeout(240)
def test_a_memory_reading_saliency_trains_on_out_of_fold_maps_and_runs_with_its_network(tmp_path: Path, capsys) -> None:
    from movseg_ros.saliency.network import SaliencyArch, build_saliency, save_saliency
    from movseg_ros.visual_memory.data import record_saliency

    data = scene_davis(tmp_path / "davis", SCENE)
    torch.manual_seed(0)
    save_mpnet(tmp_path / "mp.pt", MPNet(MPNetArch()).eval(), {})
    nets = {}
    for name, held in (("fold", ["a", "b"]), ("runtime", ["b"])):  # the runtime network trained on a
        nets[name] = build_saliency(SaliencyArch(width=8), init="none").eval()
        save_saliency(tmp_path / f"{name}.pt", nets[name], {"data": {"held_aside": held}}, half=False)
    cache = tmp_path / "cache"
    base = ["train", "visual_memory", "--config", str(CONFIG / "train_visual_memory_tiny.yaml"),
            "--set", f"data_root={data}", "--set", "held_aside=[b]", "--set", f"cache_dir={cache}",
            "--set", f"flow_cache={tmp_path / 'flow'}", "--set", f"mpnet={tmp_path / 'mp.pt'}",
            "--set", "saliency=true", "--set", "fine=4", "--set", f"saliency_weights={tmp_path / 'runtime.pt'}"]
    assert main(base + ["--set", f"fold_saliency=[{tmp_path / 'runtime.pt'}]", "--out-dir", str(tmp_path / "in_fold")]) == 2
    assert "fold_saliency" in (err := capsys.readouterr().err) and "'a'" in err
    assert main(base + ["--set", f"fold_saliency=[{tmp_path / 'fold.pt'}]", "--out-dir", str(tmp_path / "run")]) == 0
    recorded = {p.name: p for p in cache.glob("saliency/*/*.npz")}
    assert sorted(recorded) == ["a.npz", "b.npz"] and recorded["a.npz"].parent != recorded["b.npz"].parent
    for name, net in (("a", nets["fold"]), ("b", nets["runtime"])):  # each sequence's maps from its own network
        appearance = next(cache.glob(f"appearance/*/{name}.npz"))
        with np.load(recorded[f"{name}.npz"]) as z:
            assert np.allclose(z["saliency"], record_saliency(appearance, net.decode)["saliency"], atol=1e-3)
    memory, meta = load_memory(tmp_path / "run" / "visual_memory.pt")
    assert memory.arch.saliency and memory.arch.fine == 4 and meta["saliency"] is True
    settings = {"weights": str(tmp_path / "run" / "visual_memory.pt"), "mpnet_weights": str(tmp_path / "mp.pt"),
                "saliency_weights": str(tmp_path / "runtime.pt")}
    frames = [Frame(img, i * 33_333_333, "scene", i) for i, img in enumerate(make_scene(SCENE).frames[:3])]
    pipeline = Pipeline(PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": settings}))
    assert len([r for f in frames for r in pipeline.segment(f)]) == 3
    missing = {**settings, "saliency_weights": str(tmp_path / "nope.pt")}
    with pytest.raises(ModelFileError, match="nope.pt.*visual_memory.saliency_weights"):
        Pipeline(PipelineConfig.from_dict({"pipeline": "visual_memory", "visual_memory": missing}))


@pytest.mark.timeout(240)
def test_start_from_warm_starts_a_fresh_schedule_from_a_weights_file(tmp_path: Path, capsys) -> None:
    _, base = tiny_memory_run(tmp_path, SCENE)
    assert main(base + ["--out-dir", str(tmp_path / "first"), "--set", "lr=0.05"]) == 0  # far from the initial weights
    first, _ = load_memory(tmp_path / "first" / "visual_memory.pt")
    still = ["--set", "lr=1.0e-12", "--iterations", "1"]  # a step that moves nothing: what it started from shows
    assert main(base + still + ["--out-dir", str(tmp_path / "warm"), "--set",
                                f"start_from={tmp_path / 'first' / 'visual_memory.pt'}"]) == 0
    assert main(base + still + ["--out-dir", str(tmp_path / "cold")]) == 0
    warm, meta = load_memory(tmp_path / "warm" / "visual_memory.pt")
    cold, _ = load_memory(tmp_path / "cold" / "visual_memory.pt")
    trained = [k for k, v in first.state_dict().items() if not k.startswith("encoder.") and v.is_floating_point()]
    assert all(torch.allclose(warm.state_dict()[k], first.state_dict()[k], atol=1e-3) for k in trained)
    assert any((cold.state_dict()[k] - first.state_dict()[k]).abs().max() > 1e-2 for k in trained)
    assert meta["iterations"] == 1 and len(meta["start_from_sha256"]) == 64
    assert main(base + ["--out-dir", str(tmp_path / "wrong"), "--set", f"start_from={tmp_path / 'mp.pt'}"]) == 2
    assert "mp.pt" in capsys.readouterr().err


def test_a_fine_decoder_trains_on_a_frozen_finished_memory(tmp_path: Path, capsys) -> None:
    _, base = tiny_memory_run(tmp_path, SCENE)
    assert main(base + ["--out-dir", str(tmp_path / "memory"), "--set", "lr=0.05"]) == 0
    memory, _ = load_memory(tmp_path / "memory" / "visual_memory.pt")
    on_top = base + ["--set", "fine=8", "--set", f"start_from={tmp_path / 'memory' / 'visual_memory.pt'}",
                     "--set", "start_from_new=[fine.]", "--set", "freeze=[reduce, gru, online_head, offline_head]"]
    assert main(on_top + ["--out-dir", str(tmp_path / "fine"), "--set", "lr=0.05"]) == 0
    assert main(on_top + ["--out-dir", str(tmp_path / "still"), "--set", "lr=1.0e-12"]) == 0
    fine, meta = load_memory(tmp_path / "fine" / "visual_memory.pt")
    still, _ = load_memory(tmp_path / "still" / "visual_memory.pt")
    kept = [k for k in memory.state_dict() if not k.startswith("encoder.")]
    assert all(torch.equal(fine.state_dict()[k], memory.state_dict()[k]) for k in kept)  # the memory stayed fixed
    moved = [k for k in fine.state_dict() if k.startswith("fine.") and fine.state_dict()[k].is_floating_point()]
    assert moved and any((fine.state_dict()[k] - still.state_dict()[k]).abs().max() > 1e-3 for k in moved)
    assert meta["freeze"] == ["reduce", "gru", "online_head", "offline_head"]
    assert main(base + ["--out-dir", str(tmp_path / "bad"), "--set", "freeze=[decoder]"]) == 2
    assert "freeze" in capsys.readouterr().err
    assert main(base + ["--out-dir", str(tmp_path / "bad2"), "--set", "freeze=[fine]"]) == 2  # no fine decoder to freeze
    assert "no fine decoder" in capsys.readouterr().err


def test_scale_widths_add_the_training_sequences_at_other_widths_and_score_at_the_work_width(tmp_path: Path, capsys) -> None:
    from movseg_ros.training.visual_memory import MemoryTrainConfig, plan

    data = scene_davis(tmp_path / "davis", SCENE)
    torch.manual_seed(0)
    save_mpnet(tmp_path / "mp.pt", MPNet(MPNetArch()).eval(), {})
    settings = {"data_root": str(data), "held_aside": ("b",), "cache_dir": str(tmp_path / "cache"), "appearance": 8,
                "state": 8, "run_length": 3, "crop": (0, 0), "work_width": 160, "iterations": 2, "batch_size": 2,
                "flow_cache": str(tmp_path / "flow"), "mpnet": str(tmp_path / "mp.pt"), "val_images": 2,
                "out_dir": str(tmp_path / "out"), "threads": 1}
    scaled = plan(MemoryTrainConfig(**settings, scale_widths=(96,)))
    runs = scaled.phases[0][1]
    assert sorted(s.masks.shape[2] for s in runs.sequences) == [96, 160]  # sequence a at both widths
    assert [s.name for s in runs.sequences] == ["a", "a"] and scaled.meta["data"]["scale_widths"] == [96]
    assert [item["masks"].shape[-1] for item in scaled.val] == [160]  # the held-aside one at the work width only
    assert scaled.meta["data"]["frames"] == len(runs.sequences[0])
    widths = sorted({p.parent.name for p in (tmp_path / "cache" / "appearance").glob("*/a.npz")})
    assert len(widths) == 2 and len(list((tmp_path / "cache" / "appearance").glob("*/b.npz"))) == 1
    base = ["train", "visual_memory", "--config", str(CONFIG / "train_visual_memory_tiny.yaml"),
            "--set", f"data_root={data}", "--set", "held_aside=[b]", "--set", f"mpnet={tmp_path / 'mp.pt'}"]
    assert main(base + ["--out-dir", str(tmp_path / "bad"), "--set", "scale_widths=[160]"]) == 2  # the work width itself
    assert "scale_widths" in capsys.readouterr().err


def test_the_soft_iou_loss_is_one_minus_the_jaccard_index_and_frames_without_an_object_cost_nothing() -> None:
    from movseg_ros.training.visual_memory import soft_iou_loss

    target = torch.zeros(1, 2, 1, 8, 8)
    target[0, 0, 0, 2:6, 2:6] = 1.0  # frame 0 has an object; frame 1 has none
    sure = torch.where(target > 0, 20.0, -20.0)  # logits that say exactly the target
    assert float(soft_iou_loss(sure, target)) < 1e-6
    half = sure.clone()
    half[0, 0, 0, 2:6, 4:6] = -20.0  # half the object missed: Jaccard (8 + 1) / (16 + 1) on frame 0
    assert abs(float(soft_iou_loss(half, target)) - (1 - 9 / 17) / 2) < 1e-4
    logits = torch.zeros_like(target, requires_grad=True)
    soft_iou_loss(logits, target).backward()
    assert (logits.grad[target > 0] < 0).all() and (logits.grad[target == 0] > 0).all()  # toward the target


def test_iou_weight_adds_a_jaccard_term_to_each_head_and_refuses_a_negative_weight() -> None:
    from movseg_ros.training.visual_memory import MemoryTrainConfig, _losses

    net = VisualMemoryNet(MemoryArch(appearance=8, state=8))
    t, h, w = 3, 4, 6
    batch = {"s8": torch.randn(2, t, 32, h, w), "s16": torch.randn(2, t, 96, h // 2, w // 2),
             "motion": torch.rand(2, t, 1, 2 * h, 2 * w), "online_target": torch.rand(2, t, 1, 8 * h, 8 * w).round(),
             "offline_target": torch.rand(2, t, 1, 8 * h, 8 * w).round()}
    with torch.no_grad():
        plain = _losses(MemoryTrainConfig())(net, batch, torch.device("cpu"))
        both = _losses(MemoryTrainConfig(iou_weight=0.5))(net, batch, torch.device("cpu"))
    assert set(plain) == {"online_bce", "offline_bce"}
    assert set(both) == {"online_bce", "offline_bce", "online_iou", "offline_iou"}
    assert torch.allclose(both["online_bce"], plain["online_bce"]) and float(both["online_iou"]) > 0
    with pytest.raises(ValueError, match="iou_weight"):
        MemoryTrainConfig(iou_weight=-1.0)


def test_extra_roots_add_synthetic_streams_to_the_training_and_clashing_names_are_refused(tmp_path: Path,
                                                                                          capsys) -> None:
    from movseg_ros.synth import generate_clip, preset
    from movseg_ros.synth.writers import write_davis_layout

    _, base = tiny_memory_run(tmp_path, SCENE)
    synth = tmp_path / "synth"
    clip = generate_clip(preset("stemseg").replace(width=160, height=120, frames=6), 3)
    write_davis_layout(clip, synth, "s3", annotations="moved")
    assert main(base + ["--out-dir", str(tmp_path / "with"), "--set", f"extra_roots=[{synth}]"]) == 0
    _, meta = load_memory(tmp_path / "with" / "visual_memory.pt")
    assert meta["data"]["sequences"] == ["a"]  # DAVIS sequences apart from the extra ones
    assert meta["data"]["extra"] == {str(synth): {"sequences": 1, "frames": 6}}
    assert {p.name for p in (tmp_path / "cache").glob("*/*/*.npz")} == {"a.npz", "b.npz", "s3.npz"}
    write_davis_layout(clip, synth, "b", annotations="moved")  # b is the held-aside DAVIS sequence's name
    assert main(base + ["--out-dir", str(tmp_path / "clash"), "--set", f"extra_roots=[{synth}]"]) == 2
    err = capsys.readouterr().err
    assert "extra_roots" in err and str(synth) in err and "'b'" in err


@pytest.mark.parametrize("fine", [0, 4])
def test_a_step_prepared_before_its_motion_is_the_whole_step(fine: int) -> None:
    from movseg_ros.visual_memory.predictor import OnlineMemory

    torch.manual_seed(0)
    arch = MemoryArch(appearance=8, state=8, residual=True, fine=fine)
    whole, ahead = (OnlineMemory(VisualMemoryNet(arch).eval()) for _ in range(2))
    ahead.net.load_state_dict(whole.net.state_dict())
    rng = np.random.default_rng(0)
    for t in range(4):  # from a zero state on, the state carried
        rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        motion = rng.random((2, 12, 16)).astype(np.float32)
        expected = whole.step(whole.input(rgb, motion))
        got = ahead.step_prepared(ahead.prepare(ahead.features.tensors(rgb)), motion)
        assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5), t
    assert np.abs(expected).max() > 1e-3  # not all zeros: the comparison means something
    stale = ahead.prepare(ahead.features.tensors(rgb))
    ahead.step_prepared(ahead.prepare(ahead.features.tensors(rgb)), motion)
    with pytest.raises(RuntimeError, match="stepped between"):  # prepared on a state the memory has left
        ahead.step_prepared(stale, motion)
