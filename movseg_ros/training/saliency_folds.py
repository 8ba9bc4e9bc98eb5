"""Out-of-fold saliency maps for training: each sequence's maps come from a saliency network that never
trained on it, or a network that learned the sequence would hand the next stage maps far better than on new
video (the learned refinement lost 0.06 dev J to that)."""

from __future__ import annotations

from movseg_ros.training.common import TrainConfigError


def fold_assignment(files: tuple[str, ...], names: list[str], setting: str = "fold_saliency") -> dict[str, str]:
    """For each sequence, the first of the saliency `files` whose meta lists it as held aside (never trained
    on). A sequence that every file trained on is a TrainConfigError naming `setting`: its maps would be too good."""
    from movseg_ros.saliency.network import load_saliency

    unseen: list[tuple[str, set[str]]] = []
    for f in files:
        _, meta = load_saliency(f)
        unseen.append((f, set(meta.get("data", {}).get("held_aside", []))))
    chosen = {}
    for name in names:
        fits = [f for f, held in unseen if name in held]
        if not fits:
            raise TrainConfigError(f"{setting}: no file there was kept from training on '{name}' "
                                   f"(its meta's data.held_aside); out-of-fold maps need one")
        chosen[name] = fits[0]
    return chosen
