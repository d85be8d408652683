"""Clips in the bench: frames per second through the whole pipeline, against the network alone.

The clip is a pan over a sample photo (`video.samples`), stylized per frame and
in steady mode by a model with seeded untrained weights (speed does not depend
on them). ``pipeline_over_network`` is the pipeline's rate over the network's
own rate on one frame of that size: near 1 when decoding and encoding hide behind
the network.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from mlabs_desktop.core.hardware.devices import DeviceInfo

VIDEO_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
QUICK_VIDEO_SIZES = {"360p": (640, 360)}  # a quarter of 720p's pixels: the whole pipeline, in a few seconds


def _model(architecture: str, folder: Path):
    from mlabs_desktop.core.library.store import WEIGHTS, Library, Manifest
    from mlabs_desktop.core.networks.transform import build_transform_network
    from mlabs_desktop.core.networks.weights import model_arrays, save_weight_arrays

    net = build_transform_network(architecture, seed=0)
    manifest = Manifest(name=f"bench {architecture}", architecture=architecture, state="finished",
                        provenance={"source": "bench"})
    library = Library(folder)
    return library.create(manifest, lambda f: save_weight_arrays(f / WEIGHTS, model_arrays(net)))


def bench_video(architecture: str, device: DeviceInfo, quick: bool = False) -> dict:
    """Frames per second at 720p and 1080p (360p only when ``quick``), per frame and steady."""
    from mlabs_desktop.core.networks.precision import sample_photos
    from mlabs_desktop.core.stylize.stylizer import Stylizer
    from mlabs_desktop.core.video.pipeline import ClipOptions, stylize_clip
    from mlabs_desktop.core.video.samples import pan_frames, write_clip

    sizes = QUICK_VIDEO_SIZES if quick else VIDEO_SIZES
    count = 3 if quick else 8
    photo = sample_photos((1024, 680))[0].astype(np.uint8)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mlabs-bench-video-") as tmp:
        folder = Path(tmp)
        stylizer = Stylizer(_model(architecture, folder / "library"), device=device.kind, precision="float32")
        for label, size in sizes.items():
            frames = list(pan_frames(photo, size, count, step=2))
            clip = write_clip(folder / f"{label}.mp4", frames, fps=25)
            stylizer.run(frames[0])  # the first run of a size builds its kernels
            start = time.perf_counter()
            stylizer.run(frames[1])
            network = 1 / (time.perf_counter() - start)
            entry: dict = {"frames": count, "network_frames_per_s": round(network, 3)}
            for mode, steady in (("per_frame", False), ("steady", True)):
                options = ClipOptions(steady=steady)
                stylize_clip(stylizer, clip, folder / f"warm-{mode}.mp4", ClipOptions(steady=steady, seconds=0.05))
                result = stylize_clip(stylizer, clip, folder / f"{label}-{mode}.mp4", options)
                rate = result.frames / result.seconds
                entry[f"{mode}_frames_per_s"] = round(rate, 3)
                entry[f"{mode}_over_network"] = round(rate / network, 3)
            results[label] = entry
    return results
