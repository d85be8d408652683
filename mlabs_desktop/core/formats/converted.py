"""Weights converted from another tool's format into a library model: its name, preview, manifest and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.formats.bundle_format import clean_name
from mlabs_desktop.core.images.decode import read_rgb
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.images.ops import to_uint8
from mlabs_desktop.core.library.store import PREVIEW, WEIGHTS, Library, Manifest, Model
from mlabs_desktop.core.networks.weights import save_weight_arrays

PREVIEW_MAX_SIDE = 512


def render_preview(arrays: Mapping[str, np.ndarray], input_scale: float, image: Path | None = None,
                   architecture: str = "classic") -> np.ndarray:
    """The network with these weights applied to ``image`` (the app's sample by default), as uint8."""
    from mlabs_desktop import resources
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.inference import make_forward
    from mlabs_desktop.core.networks.inference import run_network
    from mlabs_desktop.core.networks.weights import assign

    rgb = read_rgb(image or resources.sample_image(), max_size=PREVIEW_MAX_SIDE)
    net = build_transform_network(architecture, input_scale)
    assign(net, arrays, "converted weights")
    return to_uint8(run_network(make_forward(net), rgb))


def free_name(library: Library, name: str) -> str:
    """``name`` cleaned, or a `UserError` when it is empty or already taken."""
    name = clean_name(name or "")
    if library.find(name):
        raise UserError.worded("a model named '{name}' already exists; choose another name ({voice.name})", name=name)
    return name


def add_converted_model(library: Library, name: str, arrays: Mapping[str, np.ndarray], *, architecture: str,
                        input_scale: float, provenance: dict[str, Any]) -> Model:
    """A finished library model from converted weights, with a preview on the sample photo."""
    name = free_name(library, name)
    preview = render_preview(arrays, input_scale, architecture=architecture)
    manifest = Manifest(name=name, architecture=architecture, input_scale=input_scale, state="finished",
                        provenance=provenance)

    def fill(folder: Path) -> None:
        save_weight_arrays(folder / WEIGHTS, arrays)
        save_image(folder / PREVIEW, preview)

    return library.create(manifest, fill)
