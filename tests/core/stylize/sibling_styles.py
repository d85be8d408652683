"""Styles fine-tuned from one parent, made directly in the library (no training): what weight blending needs."""

from __future__ import annotations

import numpy as np


def fine_tuned(library, name: str, parent, nudge: float, seed: int, sha: str | None = "parent's",
           architecture: str | None = None):
    """A model fine-tuned from ``parent``: its weights moved a little, its parent recorded as training records it."""
    from mlabs_desktop.core.library.store import WEIGHTS, Manifest
    from mlabs_desktop.core.networks.weights import save_weight_arrays
    from mlabs_desktop.core.smallfiles import file_sha256

    rng = np.random.default_rng(seed)
    weights = {k: v + np.float32(nudge) * rng.standard_normal(v.shape).astype(np.float32)
               for k, v in parent.load_weights().items()}
    provenance = {"init_from": parent.name}
    if sha:
        provenance["init_from_sha256"] = file_sha256(parent.file(WEIGHTS)) if sha == "parent's" else sha
    return library.create(Manifest(name=name, architecture=architecture or parent.manifest.architecture,
                                   state="finished", provenance=provenance),
                          lambda folder: save_weight_arrays(folder / WEIGHTS, weights))
