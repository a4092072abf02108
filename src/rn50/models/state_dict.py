"""torchvision ResNet-50 checkpoints: read safely (tensors only, never code), BN folded."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError


def load_state_dict_weights(path: str) -> dict[str, np.ndarray]:
    """A torchvision resnet50 checkpoint as folded rn50 weights (safe load, no code run)."""
    import pickle

    import torch

    from .resnet50 import fold_torchvision

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"model file {path} contains code or objects other than tensors; "
                         "refused (rn50 never unpickles code)") from exc
    except Exception as exc:
        raise ModelError(f"model file {path} is not a readable PyTorch checkpoint "
                         f"({type(exc).__name__})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"model file {path} holds a {type(state).__name__}, not a state_dict")
    try:
        return fold_torchvision({k.removeprefix("module."): v.numpy() for k, v in state.items()
                                 if hasattr(v, "numpy")})
    except (KeyError, ValueError) as exc:
        raise ModelError(f"model file {path} is not a torchvision ResNet-50 state_dict "
                         f"({exc})") from exc
