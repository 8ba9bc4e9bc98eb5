"""`movseg bench egomotion` on a tiny clip: both variants scored, the JSON's figures, the table, bad arguments."""

from __future__ import annotations

import argparse

from movseg_ros.bench import egomotion_bench
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.synth.pan_clip import PanClipConfig


def test_both_variants_are_scored_on_the_same_clips() -> None:
    config = PipelineConfig.from_dict({"geometric": {"appearance": "none", "refine_radius": 0}})
    clips = PanClipConfig(width=192, height=144, frames=3, pan_px=(6.0, 9.0), texture_source="skimage")
    result = egomotion_bench.egomotion_bench(config, clips, range(4, 5))
    assert result["clips"] == 1 and result["seeds"] == [4, 4]
    for name in egomotion_bench.VARIANTS:
        v = result["variants"][name]
        assert v["frames"] == 2 and v["residual_mean_px"] >= 0.0 and 0.0 <= v["instance_jf"] <= 1.0
        assert name in result["per_clip"][0]
    lines = egomotion_bench.summary_lines(result)
    assert any(line.startswith("gyro_prior") for line in lines) and "lower with the gyro prior" in lines[-1]


def test_bad_arguments_exit_2(capsys) -> None:
    args = argparse.Namespace(clips=0, seed=0, frames=24, texture_source="skimage", config=None, json=None)
    assert egomotion_bench.run(args) == 2
    assert "--clips" in capsys.readouterr().err
