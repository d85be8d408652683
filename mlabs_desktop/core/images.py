"""Images in and out, and the arithmetic on them: the one import for the rest of the app.

`image_decode` reads files (untrusted: every failure is a `UserError` naming
the file), `image_encode` writes them atomically, `image_ops` works on the
float32 RGB arrays in between. The names below are the public ones.
"""

from __future__ import annotations

from .image_decode import (HUGE_IMAGE_PIXELS, IMAGE_EXTENSIONS, LoadedImage, PathLike, image_info, is_image_path,
                           load_image, read_rgb, training_crop)
from .image_encode import SAVE_FORMATS, save_image, save_thumbnail, thumbnail_bytes
from .image_ops import blend, crop_to, pad_to_multiple, preserve_colors, resize_max, resize_to, to_uint8

__all__ = ["HUGE_IMAGE_PIXELS", "IMAGE_EXTENSIONS", "SAVE_FORMATS", "LoadedImage", "PathLike", "blend", "crop_to",
           "image_info", "is_image_path", "load_image", "pad_to_multiple", "preserve_colors", "read_rgb",
           "resize_max", "resize_to", "save_image", "save_thumbnail", "thumbnail_bytes", "to_uint8",
           "training_crop"]
