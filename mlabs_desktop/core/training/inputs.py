"""What a training run reads before its first step: checked values, images, the folder's index, VGG.

No Keras here: the command line checks these before starting the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlabs_desktop.core.images.decode import read_rgb
from mlabs_desktop.core.images.ops import resize_to
from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.config import PARAMS, TrainingConfig, coerce_param
from mlabs_desktop.core.training.dataset import BatchStream, FolderScan, scan_folder
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.settings import load_settings
from mlabs_desktop.resources import sample_image

PREVIEW_MAX_SIDE = 384


@dataclass(frozen=True)
class PreparedInputs:
    style: np.ndarray          # style image, already scaled by style_scale
    test: np.ndarray           # preview image, at most PREVIEW_MAX_SIDE
    test_path: Path
    stream: BatchStream
    vgg_path: Path


def validate(config: TrainingConfig) -> TrainingConfig:
    """Check every tunable value; bad ones become one readable UserError."""
    for spec in PARAMS:
        try:
            coerce_param(spec.name, getattr(config, spec.field))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if not config.style:
        raise UserError.worded("no style image given: {voice.give_style}")
    if not config.train_path:
        raise UserError.worded("no training photos given: {voice.give_photos}")
    return config


def read_images(config: TrainingConfig) -> tuple[np.ndarray, np.ndarray, Path, FolderScan, Path]:
    """The style and preview images, the training folder's index and the VGG file's path.

    Cheap next to starting the backend, so `train` calls it first: a wrong path
    answers at once.
    """
    style = read_rgb(config.style)
    if config.style_scale != 1.0:
        h, w = style.shape[:2]
        size = (max(16, round(w * config.style_scale)), max(16, round(h * config.style_scale)))
        style = resize_to(style, size)
    test_path = Path(config.test) if config.test else sample_image()
    test = read_rgb(test_path, max_size=PREVIEW_MAX_SIDE)
    scan = scan_folder(config.train_path)
    return style, test, test_path, scan, vgg.find_vgg_weights(config.vgg_path or load_settings().vgg_path)


def prepare_inputs(config: TrainingConfig, seed: int) -> PreparedInputs:
    """Read everything from disk before the first step, so bad input fails in seconds."""
    style, test, test_path, scan, vgg_path = read_images(config)
    vgg.load_vgg19_weights(vgg_path)  # validate now: a wrong file must not wait for the first step
    return PreparedInputs(style, test, test_path, BatchStream(scan, config.batch_size, config.image_size, seed),
                          vgg_path)
