"""Mixing two styles by their results or by their weights, side by side, for a person to judge.

    python docs/mixing_styles.py FIRST SECOND OUT.jpg PHOTO... [--side 384]

FIRST and SECOND are library models fine-tuned from one parent. For each photo the
picture has two rows, a mix of results above and a blend of weights below, at 0, 25,
50, 75 and 100 % of SECOND. It prints, per photo and amount, the fine texture left
(mean absolute difference from a 2-pixel blur, 0..255) and the contrast (standard
deviation): a cross-fade of two textures loses both in the middle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

AMOUNTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def texture(rgb: np.ndarray) -> float:
    from PIL import Image, ImageFilter

    image = Image.fromarray(np.uint8(np.clip(np.round(rgb), 0, 255)))
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(2)), np.float32)
    return float(np.abs(np.asarray(image, np.float32) - blurred).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("out", type=Path)
    parser.add_argument("photos", type=Path, nargs="+")
    parser.add_argument("--side", type=int, default=384, help="longest side each photo is stylized at")
    args = parser.parse_args()

    from PIL import Image

    from mlabs_desktop.core.images.decode import load_image
    from mlabs_desktop.core.images.ops import resize_max
    from mlabs_desktop.core.library.store import Library
    from mlabs_desktop.core.stylize.controls import mix_results
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    library = Library()
    first, second = library.get(args.first), library.get(args.second)
    ends = Stylizer(first, "cpu"), Stylizer(second, "cpu")
    blends = [Stylizer.blended(first, second, amount, "cpu") for amount in AMOUNTS]
    rows = []
    print("photo, amount: results mix texture / contrast | weights blend texture / contrast")
    for path in args.photos:
        rgb = resize_max(load_image(path).rgb, args.side)
        a, b = (np.clip(s.run(rgb), 0, 255) for s in ends)
        by_results = [mix_results(a, b, amount) for amount in AMOUNTS]
        by_weights = [np.clip(s.run(rgb), 0, 255) for s in blends]
        for amount, r, w in zip(AMOUNTS, by_results, by_weights):
            print(f"{path.name}, {amount:.2f}: {texture(r):5.2f} / {r.std():5.1f} | {texture(w):5.2f} / {w.std():5.1f}")
        rows += [np.concatenate(by_results, axis=1), np.concatenate(by_weights, axis=1)]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.uint8(np.round(np.concatenate(rows)))).save(args.out, quality=88)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
