"""The one weights loader: clear errors naming the file; plain torchvision state dicts accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from learned_flow_helpers import plain_state_dict_file

from movseg_ros.learned_flow.raft import build_raft
from movseg_ros.model_files import ModelFileError, load_checkpoint, load_into, save_checkpoint


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    return plain_state_dict_file(tmp_path_factory.mktemp("w") / "raft_small_plain.pth")


def test_plain_torchvision_state_dict_loads(small_file: Path) -> None:
    ck = load_checkpoint(small_file, "raft_small")
    assert ck["arch"] is None and ck["meta"] == {}
    model = build_raft("raft_small")
    load_into(model, ck["state_dict"], small_file, "raft_small")
    saved = torch.load(small_file, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_our_format_round_trips_with_meta(tmp_path: Path) -> None:
    model = build_raft("raft_small")
    path = save_checkpoint(tmp_path / "ours.pt", "raft_small", model, {"iterations": 7, "date": "2026-11-21"})
    ck = load_checkpoint(path, "raft_small")
    assert ck["arch"] == "raft_small" and ck["meta"]["iterations"] == 7
    other = build_raft("raft_small")
    load_into(other, ck["state_dict"], path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(ModelFileError, match="no such file") as e:
        load_checkpoint(path, "raft_small")
    assert str(path) in str(e.value)


def test_not_a_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(b"this is not a checkpoint\n" * 20)
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_checkpoint(path, "raft_small")
    assert str(path) in str(e.value)


def test_truncated_file(tmp_path: Path, small_file: Path) -> None:
    data = small_file.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_checkpoint(path, "raft_small")
    assert str(path) in str(e.value)


def test_our_checkpoint_of_another_arch_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "large.pt", "raft_large", build_raft("raft_large"), {})
    with pytest.raises(ModelFileError, match="architecture 'raft_large', expected 'raft_small'") as e:
        load_checkpoint(path, "raft_small")
    assert str(path) in str(e.value)


def test_plain_raft_large_state_into_raft_small_lists_keys(tmp_path: Path) -> None:
    path = plain_state_dict_file(tmp_path / "large_plain.pth", "raft_large")
    ck = load_checkpoint(path, "raft_small")  # a plain dict carries no arch: the shapes decide
    with pytest.raises(ModelFileError) as e:
        load_into(build_raft("raft_small"), ck["state_dict"], path, "raft_small")
    msg = str(e.value)
    assert str(path) in msg and "raft_small" in msg
    assert "shape" in msg or "missing" in msg


def test_mismatched_shapes_name_the_keys(tmp_path: Path, small_file: Path) -> None:
    state = torch.load(small_file, weights_only=True)
    key = "feature_encoder.convnormrelu.0.weight"
    state[key] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bent.pth"
    torch.save(state, path)
    with pytest.raises(ModelFileError, match="shape") as e:
        load_into(build_raft("raft_small"), load_checkpoint(path, "raft_small")["state_dict"], path)
    assert key in str(e.value) and str(path) in str(e.value)


def test_non_tensor_contents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelFileError, match="expected a checkpoint or a state dict"):
        load_checkpoint(path, "raft_small")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_file_messages_say_in_full_what_was_wrong(tmp_path: Path) -> None:
    """torch's reason on one line: not cut mid-sentence, the unpickler's own reason kept, escapes applied."""
    import pickle

    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(4)}, path)
    path.write_bytes(path.read_bytes()[:-40])  # the zip's central directory is gone
    with pytest.raises(ModelFileError) as e:
        load_checkpoint(path, "raft_small")
    msg = str(e.value)
    assert "\n" not in msg and "RuntimeError: PytorchStreamReader failed reading zip archive" in msg
    assert msg.endswith(".") or (" … [" in msg and msg.endswith(" more characters]")), msg
    path.write_bytes(pickle.dumps(object(), protocol=4))  # pickle opcodes the safe loader refuses
    with pytest.raises(ModelFileError, match=r"the weights-only unpickler failed: Unsupported operand \d+$"):
        load_checkpoint(path, "raft_small")


def test_long_library_errors_are_cut_at_a_word_with_an_ellipsis() -> None:
    from movseg_ros.model_files import ERROR_TEXT_LIMIT, _one_line

    text = "first line\nsecond \x1b[31m line\n\n" + "word " * 100
    out = _one_line(text)
    kept, _, rest = out.partition(" … [")
    assert "\n" not in out and "\\x1b[31m" in kept and kept.endswith("word") and len(kept) <= ERROR_TEXT_LIMIT
    assert rest.endswith(" more characters]") and int(rest.split()[0]) > 0
    assert _one_line("short\nmessage") == "short message"


def test_a_hostile_file_name_is_escaped_in_the_error(tmp_path) -> None:
    from movseg_ros.model_files import ModelFileError, load_checkpoint

    bad = tmp_path / "w\n[ERROR] forged\x1b[2J.pt"
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(bad, "raft_small")
    text = str(err.value)
    assert "\n" not in text and "\x1b" not in text and "w\\n[ERROR] forged\\x1b[2J.pt" in text and "no such file" in text
