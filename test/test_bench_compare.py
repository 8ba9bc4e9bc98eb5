"""`movseg bench compare`: the ref's code really runs from its own tree, figures are read and compared, errors name their cause."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from movseg_ros.bench.compare_bench import (CompareError, Comparison, checkout_root, figure_of, plot, report,
                                            resolve_ref, run_side)

needs_git = pytest.mark.skipif(shutil.which("git") is None or subprocess.run(
    ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True).returncode != 0,
    reason="needs git and a git checkout")


def fake_tree(tmp_path: Path, body: str) -> Path:
    """A tree whose movseg_ros.cli is `body` (argv as for `movseg`)."""
    pkg = tmp_path / "tree" / "movseg_ros"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text(textwrap.dedent(body))
    return pkg.parent


def test_the_side_runs_the_code_of_its_tree(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path, """
        import json, sys
        args = sys.argv[1:]
        assert args[:2] == ["bench", "pipeline"], args
        path = args[args.index("--json") + 1]
        json.dump({"fps": 123.5, "extra": args[2:-2]}, open(path, "w"))
    """)
    out = tmp_path / "side.json"
    assert run_side(tree, "pipeline", ["--frames", "7"], out) == 123.5
    assert json.loads(out.read_text())["extra"] == ["--frames", "7"]


def test_a_failing_side_is_named_with_its_exit_code_and_output(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path, """
        import sys
        print("weights file broken.pt: truncated")
        sys.exit(3)
    """)
    with pytest.raises(CompareError, match=r"exit 3\):\nweights file broken.pt: truncated"):
        run_side(tree, "node", [], tmp_path / "side.json")


def test_figures_are_read_by_their_keys_and_a_missing_one_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "node.json"
    assert figure_of({"latency_ms": {"p50": 41.5}}, "node", source) == 41.5
    with pytest.raises(CompareError, match=r"node.json: no 'latency_ms.p50'"):
        figure_of({"latency_ms": {}}, "node", source)
    with pytest.raises(CompareError, match="no 'fps'"):
        figure_of({}, "pipeline", source)


def test_ratio_and_carried_figure_follow_the_medians() -> None:
    c = Comparison("node", "v1", "a" * 40, "latency p50 ms", [], ["--depth"], [120.0, 100.0, 110.0], [90.0, 80.0, 70.0],
                   recorded=33.0)
    assert c.ratio == pytest.approx(80.0 / 110.0)
    assert c.carried == pytest.approx(33.0 * 80.0 / 110.0)
    text = report(c)
    assert "ratio new/ref 0.727 (faster)" in text  # lower latency is better
    assert "-> this checkout there 24.0" in text
    slower = Comparison("pipeline", "v1", "a" * 40, "frames/s", [], [], [20.0], [10.0])
    assert "(slower)" in report(slower) and slower.carried is None


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    c = Comparison("pipeline", "v1", "b" * 40, "frames/s", [], [], [12.9, 14.8], [16.9, 15.8])
    path = plot(c, tmp_path / "compare.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_git
def test_an_unknown_ref_is_refused_with_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CompareError, match="--ref 'no-such-ref-xyz': no such commit"):
        resolve_ref(checkout_root(), "no-such-ref-xyz")
    from movseg_ros.cli import main

    assert main(["bench", "compare", "--ref", "no-such-ref-xyz"]) == 2
    assert "no-such-ref-xyz" in capsys.readouterr().err


@needs_git
def test_head_against_this_checkout_on_a_small_scene(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    done = subprocess.run([sys.executable, "-m", "movseg_ros.cli", "bench", "compare", "--ref", "HEAD", "--rounds", "1",
                           "--args", "--frames 3 --warmup 1 --width 160 --height 120", "--recorded", "40",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    assert data["commit"] == head.stdout.strip()
    assert len(data["ref_values"]) == len(data["new_values"]) == 1
    assert min(data["ref_values"] + data["new_values"]) > 0
    assert data["carried"] == pytest.approx(40 * data["ratio"])
    assert "ratio new/ref" in done.stdout
