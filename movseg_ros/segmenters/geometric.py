"""The weight-free CPU pipeline: flow, camera ego-motion, residual motion, instances."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from movseg_ros.bench.stage_clock import StageClock, timed
from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.ego_motion import PRIOR_GATE, EgoMotion, pixel_grid, rescale_homography, robust_spread
from movseg_ros.flow import SPARSE_MIN_PIXELS, DISFlow, DISFlowConfig
from movseg_ros.frame import Frame
from movseg_ros.guided_filter import guided_filter
from movseg_ros.refine.features import EvidenceMaps
from movseg_ros.rotation_prior import rotation_homography
from movseg_ros.segmenters.appearance_fusion import FusionSettings, fuse_saliency
from movseg_ros.segmenters.base import DEVICES, Detection, MotionContext, SegmenterResult, check_runtime_settings
from movseg_ros.segmenters.regions import split_by_motion, upsample_region


log = logging.getLogger(__name__)

FLOW_METHODS = ("dis", "raft")
APPEARANCES = ("none", "saliency")
MOTION_NETS = ("none", "mpnet")
REFINES = ("none", "learned")
MEMORY_NETS = ("none", "visual_memory")
MEMORY_SHIPPED = "visual_memory_movers.pt"  # memory_net's file under models/ when memory_weights is empty
LOGIT_EPS = 1e-3  # keeps the colour model's log-odds finite at probabilities 0 and 1
MPNET_MIN_SIDE = 32  # MP-Net's smallest input side (visual_memory.mpnet.MIN_SIDE)


@dataclass(frozen=True)
class GeometricConfig:
    """Settings of the geometric segmenter (work resolution, flow, thresholds)."""

    work_width: int = 400  # frames are processed at this width (aspect kept); with the memory, 400 scores as 424 held aside (0.662, 0.661) at about 1.1x the frames/s
    flow_preset: str = "balanced"  # DIS: ultrafast | fast | balanced | medium (balanced: medium's J at half its time)
    flow_method: str = "dis"  # dis (OpenCV, CPU) | raft (learned; needs flow_weights)
    flow_weights: str = ""  # RAFT weights file (our checkpoint or a torchvision state dict); required for raft
    raft_arch: str = "raft_small"  # raft_small | raft_large (must match flow_weights)
    raft_iterations: int = 12  # RAFT refinement iterations
    raft_device: str = "cpu"  # cpu | cuda | auto
    accelerator: str = "auto"  # RAFT: auto (TensorRT on CUDA, else torch.compile, else eager) | tensorrt | compile | eager
    precision: str = "fp32"  # RAFT: fp32 | fp16 | bf16 (fp16 on CUDA only; elsewhere fp32, logged)
    residual_k: float = 4.5  # residual over k robust sigmas counts as motion evidence (chosen with motion_net: mpnet)
    memory: float = 0.45  # weight of the flow-warped previous probability map (chosen with motion_net: mpnet)
    min_area: float = 0.002  # smallest instance, as a fraction of the image
    split_min_px: float = 4.0  # a region splits when its residual motions form clusters this far apart (work px); 0 = off
    refine_radius: int = 5  # guided-filter radius (work pixels) that snaps masks to image edges; 0 = off (8 before the memory: with it, 3-6 score best held aside and on synthetic validation)
    refine_eps: float = 0.002  # guided-filter regulariser (image in [0, 1])
    refine_subsample: int = 2  # on work images of >= 90,000 px, the guided filter's coefficients are fitted this much smaller (fast form); 1 = exact
    fb_check: float = 0.5  # forward-backward flow disagreement (px) above which a pixel has no evidence; 0 = off (0.3 before the backward flow lost its refinement)
    fb_relative: float = 0.05  # ... plus this fraction of the flow magnitude
    fb_flow_refinement: int = 0  # DIS variational refinement passes of the check's backward flow (-1: the preset's); 0 saves ~40 % of that flow's time (with fb_check 0.5, held-aside J unchanged)
    colour_weight: float = 1.0  # weight of the colour model against motion evidence; 0 = off
    colour_memory: float = 0.7  # how much of last frame's colour histograms is kept
    colour_reach: int = 24  # colour may add foreground only this close (work pixels) to motion
    appearance: str = "saliency"  # none | saliency (our distilled salient-object network gives movers their extent)
    saliency_weights: str = ""  # saliency network file; "" = the shipped models/saliency_mobilenet_v2.pt
    saliency_width: int = 256  # the saliency network sees frames at this width
    saliency_every: int = 1  # run the saliency network every k frames (off the frame path, a frame late), flow carries it between
    saliency_threshold: float = 0.6191  # saliency above this is a salient pixel
    saliency_touch: float = 0.06094  # a salient segment moves when this fraction of it has motion evidence
    saliency_trim: float = 0.8689  # motion mostly inside moving salient segments is cut to them; > 1 = never
    saliency_reach: int = 3  # a moving salient segment gives extent only this close (work pixels) to motion; 0 = all of it
    saliency_static: bool = True  # salient segments without motion may continue stopped tracks (static branch)
    static_camera: bool = False  # a fixed camera: skip ego-motion (its motion is taken as none)
    motion_net: str = "mpnet"  # none | mpnet: MP-Net's probability of independent motion also counts as motion evidence
    mpnet_weights: str = ""  # MP-Net file; "" = the shipped models/mpnet.pt (trained on camera-compensated flow)
    mpnet_width: int = 256  # MP-Net reads the flow at this width (aspect kept)
    refine: str = "none"  # none | learned (a small network trained on DAVIS-2016 train corrects the fused map)
    refine_weights: str = ""  # refinement network file; "" = the shipped models/refine_geometric.pt
    memory_net: str = "visual_memory"  # none | visual_memory: the visual memory's map of the frame (its ConvGRU over ImageNet appearance and this pipeline's MP-Net map and residual, in a worker thread beside it) averaged into the final map; needs motion_net: mpnet
    memory_weights: str = ""  # the memory's file for memory_net; "" = the shipped models/visual_memory_movers.pt (trained
    #   on DAVIS-2016 train and synthetic streams of several movers: the visual_memory pipeline's own file knows one)
    memory_keep: float = 0.9  # with memory_net: pixels this pipeline is at least this sure of keep its probability, the rest take the mean with the memory's (> 1: the mean everywhere); chosen on DAVIS-2016 train

    def __post_init__(self) -> None:
        if not 64 <= self.work_width <= 1920:
            raise ValueError(f"work_width must be in [64, 1920], got {self.work_width}")
        DISFlowConfig(preset=self.flow_preset)
        if self.flow_method not in FLOW_METHODS:
            raise ValueError(f"geometric.flow_method '{self.flow_method}' is not one of {', '.join(FLOW_METHODS)}")
        if self.flow_method == "raft":
            if not self.flow_weights:
                raise ValueError("geometric.flow_method 'raft' needs geometric.flow_weights (a RAFT weights file, "
                                 "e.g. models/raft_small_synth.pt)")
        if not 1 <= self.raft_iterations <= 64:
            raise ValueError(f"geometric.raft_iterations must be in [1, 64], got {self.raft_iterations}")
        if self.raft_arch not in ("raft_small", "raft_large"):
            raise ValueError(f"geometric.raft_arch '{self.raft_arch}' is not one of raft_small, raft_large")
        if self.raft_device not in DEVICES:
            raise ValueError(f"geometric.raft_device '{self.raft_device}' is not one of {', '.join(DEVICES)}")
        check_runtime_settings("geometric", self.raft_device, self.accelerator, self.precision)
        for name, low, high in (("memory", 0.0, 0.999), ("colour_memory", 0.0, 0.999), ("min_area", 0.0, 0.5),
                                ("residual_k", 0.1, 100.0), ("fb_check", 0.0, 100.0), ("fb_relative", 0.0, 1.0),
                                ("colour_weight", 0.0, 10.0), ("refine_eps", 1e-6, 1.0), ("split_min_px", 0.0, 1000.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"geometric.{name} must be in [{low}, {high}], got {value}")
        if not -1 <= self.fb_flow_refinement <= 20:
            raise ValueError(f"geometric.fb_flow_refinement must be in [-1, 20] (-1: the preset's), "
                             f"got {self.fb_flow_refinement}")
        if self.refine not in REFINES:
            raise ValueError(f"geometric.refine '{self.refine}' is not one of {', '.join(REFINES)}")
        if self.memory_net not in MEMORY_NETS:
            raise ValueError(f"geometric.memory_net '{self.memory_net}' is not one of {', '.join(MEMORY_NETS)}")
        if not 0.0 <= self.memory_keep <= 2.0:
            raise ValueError(f"geometric.memory_keep must be in [0, 2], got {self.memory_keep}")
        if self.motion_net not in MOTION_NETS:
            raise ValueError(f"geometric.motion_net '{self.motion_net}' is not one of {', '.join(MOTION_NETS)}")
        if self.memory_net != "none" and self.motion_net != "mpnet":
            raise ValueError(f"geometric.memory_net '{self.memory_net}' reads MP-Net's map: it needs motion_net: mpnet "
                             "(or set memory_net: none too)")
        if not 64 <= self.mpnet_width <= 1920:
            raise ValueError(f"geometric.mpnet_width must be in [64, 1920], got {self.mpnet_width}")
        if self.appearance not in APPEARANCES:
            raise ValueError(f"geometric.appearance '{self.appearance}' is not one of {', '.join(APPEARANCES)}")
        for name, low, high in (("saliency_threshold", 0.01, 0.99), ("saliency_touch", 0.0, 1.0),
                                ("saliency_trim", 0.0, 2.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"geometric.{name} must be in [{low}, {high}], got {value}")
        if not 1 <= self.refine_subsample <= 8:
            raise ValueError(f"geometric.refine_subsample must be in [1, 8], got {self.refine_subsample}")
        if not 1 <= self.saliency_every <= 100:
            raise ValueError(f"geometric.saliency_every must be in [1, 100], got {self.saliency_every}")
        if not 32 <= self.saliency_width <= 1920:
            raise ValueError(f"geometric.saliency_width must be in [32, 1920], got {self.saliency_width}")
        for name, low in (("refine_radius", 0), ("colour_reach", 1), ("saliency_reach", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"geometric.{name} must be >= {low}, got {getattr(self, name)}")


class GeometricSegmenter:
    """Online: each new frame is segmented against the previous one at once."""

    name = "geometric"
    latency_frames = 0
    identities = False
    device = "cpu"

    def __init__(self, config: GeometricConfig = GeometricConfig()) -> None:
        self.config = config
        if config.refine_radius > 0 and not hasattr(cv2, "ximgproc"):
            raise RuntimeError("geometric.refine_radius > 0 needs OpenCV's contrib module ximgproc "
                               "(pip: opencv-contrib-python-headless); install it or set refine_radius: 0")
        self.flow = DISFlow(DISFlowConfig(preset=config.flow_preset, scale=1.0))
        self.back_flow = DISFlow(DISFlowConfig(preset=config.flow_preset, scale=1.0,
                                               variational_refinement_iters=config.fb_flow_refinement))
        self.raft = None  # RaftFlow when flow_method is raft: flow from the RGB work-resolution images
        if config.flow_method == "raft":
            from movseg_ros.learned_flow.raft import RaftFlow, RaftFlowConfig  # torch only when asked for

            from movseg_ros.accel import AcceleratorConfig, PerShapeAccelerated

            self.raft = RaftFlow(RaftFlowConfig(arch=config.raft_arch, weights=config.flow_weights,
                                                iterations=config.raft_iterations, device=config.raft_device))
            accelerator = AcceleratorConfig(accelerator=config.accelerator, precision=config.precision,
                                            device=self.raft.device.type)
            self.raft.set_forward(PerShapeAccelerated(self.raft.module, accelerator, "flow"))  # built on the first frame
            self.device = self.raft.device.type
        self.saliency = None  # ScheduledSaliency when appearance is saliency (and the memory does not decode it)
        self.refiner = make_refiner(config) if config.refine == "learned" else None
        self.motion_net = make_motion_net(config) if config.motion_net == "mpnet" else None  # MotionPredictor
        self.memory_map = make_memory_map(config) if config.memory_net == "visual_memory" else None
        if config.appearance == "saliency" and (self.memory_map is None or self.memory_map.saliency is None):
            self.saliency = make_scheduled_saliency(config)
        self.clock: StageClock | None = None  # `movseg bench stages` sets one to time flow and ego-motion
        self.last_residual: np.ndarray | None = None  # latest flow minus ego flow (work size), for `movseg bench egomotion`
        self.last_maps: EvidenceMaps | None = None  # latest frame's maps (the refinement's input; its training data)
        self.reset()

    def flush(self) -> list[SegmenterResult]:
        """Online: nothing is ever held back."""
        return []

    def reset(self) -> None:
        self._prev_grey: np.ndarray | None = None
        self._prev_rgb: np.ndarray | None = None
        self._prob: np.ndarray | None = None
        self._hist: tuple[np.ndarray, np.ndarray] | None = None
        self.last_residual = None
        self.last_maps = None
        if self.saliency is not None:
            self.saliency.reset()
        if self.memory_map is not None:
            self.memory_map.reset()

    def process(self, buffer: ClipBuffer) -> list[SegmenterResult]:
        frame = buffer.newest
        small_rgb = frame.at_width(self.config.work_width)
        h, w = small_rgb.shape[:2]
        h0, w0 = frame.size
        if self.memory_map is not None:
            if self._prev_grey is None or len(buffer) < 2:
                self.memory_map.reset()  # a new stream: the memory starts from nothing too
            self.memory_map.start(small_rgb)  # its appearance pass, in its worker, beside this frame's flow here
        grey = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2GRAY)
        prev, self._prev_grey = self._prev_grey, grey
        prev_rgb, self._prev_rgb = self._prev_rgb, small_rgb
        if prev is None or len(buffer) < 2:
            self._prob = None
            self.last_residual = None
            self.last_maps = None
            if self.saliency is not None:
                self.saliency.reset()
                self.saliency.step(small_rgb, None)
            if self.memory_map is not None:  # the memory sees the stream's first frame, without motion
                self.memory_map.feed(self._still_mpnet((h, w)), None)
                self.memory_map.result((h, w))
            return [SegmenterResult(frame)]
        with timed(self.clock, "flow"):
            flow = self._flow(grey, prev, small_rgb, prev_rgb)  # current -> previous: where each pixel came from
        gx, gy = pixel_grid((h, w))
        map_x, map_y = gx + flow[..., 0], gy + flow[..., 1]  # each pixel's place in the previous frame
        carried = None  # last frame's probability map, moved along the flow to this frame
        if self._prob is not None:
            carried = cv2.remap(self._prob, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
        known = None if carried is None else carried > 0.5  # where last frame's objects are now
        fb_fail = np.zeros((h, w), bool)
        if self.config.fb_check > 0:
            with timed(self.clock, "flow"):
                back = self._flow(prev, grey, prev_rgb, small_rgb, backward=True)  # previous -> current
            fb_fail = ~self._consistent(flow, cv2.remap(back, map_x, map_y, cv2.INTER_LINEAR))
        # pixels whose flow is not to be trusted about the camera: last frame's objects, and flow that fails
        # the forward-backward check (water, sky, occlusions); they neither vote for it nor set the spread
        untrusted = fb_fail if known is None else known | fb_fail
        prior = None if self.config.static_camera else _rotation_prior(frame, (h, w))
        with timed(self.clock, "ego_motion"):
            ego = self._ego_motion(flow, untrusted, prior)
        residual = self.last_residual = flow - ego.flow
        evidence, motion_z = self._evidence(residual, untrusted, prior is not None)
        if self.motion_net is not None:
            with timed(self.clock, "motion_net"):
                evidence = np.maximum(evidence, self._learned_evidence(flow, residual))
        evidence[fb_fail] = 0.0
        prob = evidence if carried is None else (1 - self.config.memory) * evidence + self.config.memory * carried
        self._prob = prob
        if self.config.colour_weight > 0:
            prob = self._colour_fuse(small_rgb, prob)
        colour = prob
        static: list[Detection] = []
        salient = None
        if self.saliency is not None:
            with timed(self.clock, "saliency"):
                salient = self.saliency.step(small_rgb, (map_x, map_y))
        elif self.memory_map is not None and self.memory_map.saliency is not None:
            with timed(self.clock, "saliency"):  # this frame's, from the memory's appearance pass
                salient = self.memory_map.salient((h, w))
        if salient is not None:
            fused = fuse_saliency(prob, salient, self._fusion((h, w)))
            prob = fused.prob
            if self.config.saliency_static:
                static = [Detection(upsample_region(m, (0, 0), (h, w), (h0, w0)), score, moving=False)
                          for m, score in zip(fused.static_segments, fused.static_scores)]
        zeros = np.zeros((h, w), np.float32)
        self.last_maps = EvidenceMaps(evidence, motion_z, fb_fail,
                                      zeros if carried is None else carried, colour,
                                      zeros if salient is None else salient, prob, small_rgb)
        if self.refiner is not None:
            with timed(self.clock, "refine"):
                prob = self.refiner(self.last_maps)
        if self.config.refine_radius > 0:
            guide = grey.astype(np.float32) / 255.0
            # the fast form on large work images only: on small ones it costs J and saves little
            subsample = self.config.refine_subsample if h * w >= SPARSE_MIN_PIXELS else 1
            prob = guided_filter(guide, prob, self.config.refine_radius, self.config.refine_eps, subsample)
        if self.memory_map is not None:
            with timed(self.clock, "memory_net"):  # the wait for the worker: what it adds to the frame
                remembered = self.memory_map.result((h, w))
            # the mean of the two maps, but what this pipeline is sure of stays: a mover the memory does not know
            # (it learned DAVIS's one salient subject) is not halved away
            prob = np.where(prob >= self.config.memory_keep, prob, (prob + remembered) / 2)
        dets = _instances(prob, residual, (h0, w0), self.config) + static
        to_current = rescale_homography(np.linalg.inv(ego.homography), (h, w), (h0, w0))
        return [SegmenterResult(frame, dets, MotionContext(buffer[-2].image, frame.image, to_current))]

    def _ego_motion(self, flow: np.ndarray, known: np.ndarray | None, prior: np.ndarray | None) -> EgoMotion:
        """The camera's motion in the flow: none for a static camera, else fitted to the flow, starting from
        the `prior` homography (the robot's rotation) when there is one."""
        if self.config.static_camera:
            return EgoMotion.still(flow.shape[:2])
        return EgoMotion.fit(flow, exclude=known, prior=prior)

    def _fusion(self, shape: tuple[int, int]) -> FusionSettings:
        """The saliency fusion settings at this work resolution."""
        c = self.config
        return FusionSettings(c.saliency_threshold, c.saliency_touch, c.saliency_trim, c.min_area * shape[0] * shape[1],
                              c.saliency_reach)

    def _flow(self, grey_a: np.ndarray, grey_b: np.ndarray, rgb_a: np.ndarray, rgb_b: np.ndarray | None,
              backward: bool = False) -> np.ndarray:
        """Flow a -> b at the work resolution: RAFT on the RGB images when configured, else DIS on grey (the
        check's `backward` flow with its own refinement setting)."""
        if self.raft is not None and rgb_b is not None:
            return self.raft(rgb_a, rgb_b)
        return (self.back_flow if backward else self.flow).flow_grey(grey_a, grey_b)

    def _evidence(self, residual: np.ndarray, known: np.ndarray | None, prior: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(motion evidence in [0, 1], residual in robust sigmas): the residual flow in units of its robust
        spread, and that over k as evidence.

        The spread is measured away from last frame's objects, so a large object does not
        inflate it and hide itself; with a rotation `prior`, also away from pixels the ego-motion
        misses by more than the prior's gate (they did not vote for it), so a new one is found at once.
        """
        mag = cv2.magnitude(residual[..., 0], residual[..., 1])
        if prior:
            off = mag > PRIOR_GATE
            known = off if known is None else known | off
        scene = mag[~known] if known is not None and (~known).mean() >= 0.3 else mag
        sigma = robust_spread(scene)
        k = self.config.residual_k
        z = mag / sigma
        return np.clip((z - k) / k, 0.0, 1.0).astype(np.float32), z

    def _mpnet_size(self, shape: tuple[int, int]) -> tuple[int, int] | None:
        """(height, width) MP-Net reads the flow at for a work size; None when that is too small for it."""
        h, w = shape
        mw = min(self.config.mpnet_width, w)
        mh = round(h * mw / w)
        return None if min(mh, mw) < MPNET_MIN_SIDE else (mh, mw)

    def _learned_evidence(self, flow: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """MP-Net's probability of independent motion at the work size, from this frame's flow and its residual
        (after this pipeline's own ego-motion) at `mpnet_width`; zeros on frames too small for it. The memory
        (memory_net), when on, steps on the same map and residual."""
        h, w = flow.shape[:2]
        size = self._mpnet_size((h, w))
        if size is None:
            if self.memory_map is not None:
                self.memory_map.feed(np.zeros(((h + 3) // 4, (w + 3) // 4), np.float32), None)
            return np.zeros((h, w), np.float32)
        mh, mw = size

        def heading(f: np.ndarray) -> np.ndarray:  # MP-Net reads where frame t's pixels head, at its own scale
            return cv2.resize(f, (mw, mh), interpolation=cv2.INTER_AREA) * np.float32(-mw / w)

        moving = heading(residual)
        prob = self.motion_net(heading(flow), moving)
        if self.memory_map is not None:
            self.memory_map.feed(prob, moving)
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)

    def _still_mpnet(self, shape: tuple[int, int]) -> np.ndarray:
        """MP-Net's map of a frame without motion (a stream's first), at stride 4 of its input size."""
        size = self._mpnet_size(shape)
        if size is None:
            return np.zeros(((shape[0] + 3) // 4, (shape[1] + 3) // 4), np.float32)
        still = np.zeros(size + (2,), np.float32)
        return self.motion_net(still, still)

    def _consistent(self, flow: np.ndarray, back_there: np.ndarray) -> np.ndarray:
        """Pixels whose flow, followed there and back, returns home (not occluded, not smeared).

        `back_there` is the backward flow sampled where each pixel's flow points. DIS smears an
        object's flow over the background it uncovers; those pixels fail here.
        """
        trip = flow + back_there
        err = cv2.magnitude(trip[..., 0], trip[..., 1])
        return err <= self.config.fb_check + self.config.fb_relative * cv2.magnitude(flow[..., 0], flow[..., 1])

    def _colour_fuse(self, rgb: np.ndarray, prob: np.ndarray) -> np.ndarray:
        """Sharpen motion evidence with fg/bg colour histograms learned from the motion itself.

        Histograms (16 bins a channel) come from confident motion pixels and are smoothed over
        time; colour may raise the probability only near motion, and may lower it anywhere.
        """
        q = (rgb[..., 0] >> 4).astype(np.uint16) << 8  # the 4096-bin colour of each pixel
        q |= (rgb[..., 1] >> 4).astype(np.uint16) << 4
        q |= rgb[..., 2] >> 4
        q = q.ravel()
        p = prob.ravel()
        fg = np.bincount(q[p > 0.6], minlength=4096).astype(np.float64)
        bg = np.bincount(q[p < 0.2], minlength=4096).astype(np.float64)
        if fg.sum() < 20:
            return prob
        fg /= fg.sum()
        bg /= max(bg.sum(), 1.0)
        m = self.config.colour_memory
        if self._hist is not None:
            fg = m * self._hist[0] + (1 - m) * fg
            bg = m * self._hist[1] + (1 - m) * bg
        self._hist = (fg, bg)
        # sigmoid(logit(p) + c) as odds: (p + e) / ((p + e) + (1 - p + e) exp(-c)), with exp(-c) one lookup a
        # pixel into the 4096 bins' table: no log or exp a pixel
        against = np.exp(-self.config.colour_weight * _logit((fg + 1e-4) / (fg + bg + 2e-4))).astype(np.float32)
        reach = 2 * self.config.colour_reach + 1
        near = cv2.dilate((prob > 0.5).astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
        odds_for = prob + np.float32(LOGIT_EPS)
        fused = odds_for / (odds_for + (np.float32(1 + LOGIT_EPS) - prob) * against[q].reshape(prob.shape))
        return np.where(near, fused, np.minimum(prob, fused))


def _network(option: str, setting: str, load):
    """`load()` of a torch network that geometric.`option` asks for; errors name geometric.`setting` and the file
    (still ModelFileErrors, so the node can name the parameter from the path), or say to install torch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        name, value = option.split("=")
        raise RuntimeError(f"geometric.{name} '{value}' needs torch (pip install 'movseg_ros[ml]'); "
                           f"or set geometric.{name}: none") from None
    from movseg_ros.model_files import ModelFileError

    try:
        return load()
    except ModelFileError as e:
        raise ModelFileError(e.path, f"{e.problem} (the file of geometric.{setting})") from None


def make_scheduled_saliency(config: GeometricConfig):
    """The saliency network of `config` on its every-k schedule; errors name geometric.saliency_weights."""

    def load():
        from movseg_ros.paths import weights_file
        from movseg_ros.saliency.predictor import SHIPPED, SaliencyPredictor
        from movseg_ros.saliency.schedule import ScheduledSaliency

        predictor = SaliencyPredictor(weights_file(config.saliency_weights, SHIPPED), config.saliency_width)
        return ScheduledSaliency(predictor, config.saliency_every)

    return _network("appearance=saliency", "saliency_weights", load)


def make_motion_net(config: GeometricConfig):
    """MP-Net for `geometric.motion_net: mpnet` (frozen per flow size); errors name geometric.mpnet_weights."""

    def load():
        from movseg_ros.paths import weights_file
        from movseg_ros.visual_memory.mpnet import MotionPredictor

        # one torch thread: the saliency network's worker thread runs beside it on the same cores (0.91x the
        # pipeline's frames/s of motion_net: none, against 0.76x with two)
        return MotionPredictor(weights_file(config.mpnet_weights, "mpnet.pt"), frozen=True, threads=1)

    return _network("motion_net=mpnet", "mpnet_weights", load)


def make_memory_map(config: GeometricConfig):
    """The visual memory for `geometric.memory_net: visual_memory`, with the saliency network when appearance is
    saliency (its decoder reads the memory's appearance pass); errors name geometric.memory_weights or
    geometric.saliency_weights. A memory trained on another MP-Net's maps than geometric.mpnet_weights's is named
    in a warning."""
    from movseg_ros.paths import weights_file

    saliency = None
    if config.appearance == "saliency":
        def load_saliency_net():
            from movseg_ros.saliency.network import load_saliency
            from movseg_ros.saliency.predictor import SHIPPED

            return load_saliency(weights_file(config.saliency_weights, SHIPPED))[0]

        saliency = _network("appearance=saliency", "saliency_weights", load_saliency_net)

    def load():
        from movseg_ros.model_files import file_sha256
        from movseg_ros.segmenters.memory_map import make_memory_map as make

        weights = weights_file(config.memory_weights, MEMORY_SHIPPED)
        maps = make(str(weights), saliency=saliency)
        mpnet = weights_file(config.mpnet_weights, "mpnet.pt")
        learned_from = maps.meta.get("mpnet_sha256")
        if learned_from and learned_from != file_sha256(mpnet):
            log.warning("geometric: the memory %s learned from another MP-Net (sha256 %s) than %s",
                        weights, learned_from[:12], mpnet)
        return maps

    return _network("memory_net=visual_memory", "memory_weights", load)


def make_refiner(config: GeometricConfig):
    """The refinement network of `config`; errors name geometric.refine_weights."""

    def load():
        from movseg_ros.paths import weights_file
        from movseg_ros.refine.predictor import SHIPPED, MaskRefiner

        return MaskRefiner(weights_file(config.refine_weights, SHIPPED))

    return _network("refine=learned", "refine_weights", load)


def _rotation_prior(frame: Frame, shape: tuple[int, int]) -> np.ndarray | None:
    """The frame's rotation as a homography in the flow's direction (this frame's work pixels to the previous
    frame's): K R^T K^-1 at the work size; None unless the frame has both rotation and intrinsics."""
    if frame.rotation is None or frame.intrinsics is None:
        return None
    k = frame.intrinsics.scaled(shape[1], shape[0])
    return rotation_homography(np.asarray(frame.rotation, np.float64).T, k)


def _logit(p: np.ndarray, eps: float = LOGIT_EPS) -> np.ndarray:
    return np.log((p + eps) / (1 - p + eps))


def _instances(prob: np.ndarray, resid: np.ndarray, full: tuple[int, int], cfg: GeometricConfig) -> list[Detection]:
    """Regions of prob > 0.5, split where their residual motions differ, as full-size detections.

    The score is the 90th percentile of the probability inside the region: a real mover has a
    confident core; noise barely clears 0.5.
    """
    m = (prob > 0.5).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    h, w = prob.shape
    min_px = cfg.min_area * h * w
    dets = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_px:
            continue
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        region = lab[y:y + bh, x:x + bw] == i
        for part in split_by_motion(region, resid[y:y + bh, x:x + bw], cfg.split_min_px, min_px):
            score = float(np.percentile(prob[y:y + bh, x:x + bw][part], 90))
            dets.append(Detection(upsample_region(part, (x, y), (h, w), full), score, True))
    return dets
