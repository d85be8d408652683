"""Tiled stylizing: the same result as the whole image, no seams, bounded memory, automatic use.

The networks here have random weights and random instance-norm scales and
shifts: their outputs swing over the whole range and react to any error in the
statistics or the context, which a trained network would partly hide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlabs_desktop.core.images.decode import load_image
from mlabs_desktop.core.images.encode import save_image
from mlabs_desktop.core.images.ops import pad_to_multiple, to_uint8
from mlabs_desktop.core.stylize import stylizer as stylize
from mlabs_desktop.core.tiling import policy as tiling
from mlabs_desktop.core.tiling.statistics import Moments
from mlabs_desktop.core.tiling.geometry import ALIGN, MIN_SIDE, Box, Tile, padded_size, plan_tiles
from mlabs_desktop.core.tiling.program import receptive_radius
from mlabs_desktop.core.tiling.source import SourceImage, load_pixels
from mlabs_desktop.core.tiling.network import TiledNetwork
from mlabs_desktop.core.networks import inference
from mlabs_desktop.core.networks.inference import run_network
from mlabs_desktop.core.stylize.stylizer import BlendOptions, Stylizer

from test_networks import randomise_norms

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "samples"
TOLERANCE = 2 / 255  # mean absolute difference allowed, in 0..255 levels (the issue allows 2 levels)


def photo(width: int, height: int, name: str = "coffee") -> np.ndarray:
    with Image.open(SAMPLES / f"{name}.jpg") as im:
        return np.asarray(im.convert("RGB").resize((width, height), Image.LANCZOS))


def random_network(architecture: str, seed: int = 1):
    from mlabs_desktop.core.networks.transform import build_transform_network

    net = build_transform_network(architecture, seed=seed)
    randomise_norms(net, seed)
    return net


_networks: dict[str, tuple] = {}


def network(architecture: str):
    """(keras model, compiled whole-image forward, TiledNetwork), built once per test session."""
    if architecture not in _networks:
        from mlabs_desktop.core.networks.inference import make_forward

        net = random_network(architecture)
        _networks[architecture] = (net, make_forward(net), TiledNetwork(net))
    return _networks[architecture]


def untiled(architecture: str, rgb: np.ndarray) -> np.ndarray:
    _, forward, _ = network(architecture)
    return run_network(forward, np.asarray(rgb, np.float32))


def seam_ratio(img: np.ndarray, tiles: list[Tile]) -> float:
    """Mean absolute step across tile borders over the mean step everywhere else (1 = no seam)."""
    h, w = img.shape[:2]
    cols = sorted({t.core.left for t in tiles if 0 < t.core.left < w})
    rows = sorted({t.core.top for t in tiles if 0 < t.core.top < h})
    gx = np.abs(np.diff(img.astype(np.float64), axis=1)).mean(axis=(0, 2))
    gy = np.abs(np.diff(img.astype(np.float64), axis=0)).mean(axis=(1, 2))
    at = np.concatenate([gx[[c - 1 for c in cols]], gy[[r - 1 for r in rows]]])
    off = np.concatenate([np.delete(gx, [c - 1 for c in cols]), np.delete(gy, [r - 1 for r in rows])])
    return float(at.mean() / off.mean())


# ---------------------------------------------------------------- agreement with the whole image
@pytest.mark.parametrize("architecture", ["default", "classic", "lite"])
def test_tiled_output_matches_the_whole_image(architecture):
    rgb = photo(300, 220)
    reference = untiled(architecture, rgb)
    _, _, tiled = network(architecture)
    out = tiled.run(rgb, tile=96)
    assert tiled.last_run.tiles == 12 and tiled.last_run.stats == "exact"
    diff = np.abs(out - reference)
    assert diff.mean() < TOLERANCE and diff.max() < 0.5, (diff.mean(), diff.max())
    if architecture != "default":
        return
    # The compiled second pass, given the statistics, agrees too.
    stats = tiled.statistics(rgb, "exact")
    again = tiled.run(rgb, tile=96, stats=stats)
    assert np.abs(again - reference).mean() < TOLERANCE
    assert tiled.last_run.residual < 1e-4  # the pass measured the statistics it was given


@pytest.mark.heavy
def test_exact_statistics_in_bounded_memory_pass_by_pass():
    rgb = photo(200, 148, "astronaut")
    reference = untiled("lite", rgb)
    _, _, tiled = network("lite")
    out = tiled.run(rgb, tile=64, stats_memory=1)  # nothing fits: one pass per norm layer
    assert tiled.last_run.stats == "exact-passes" and tiled.last_run.passes == len(tiled.norms) + 1
    diff = np.abs(out - reference)
    assert diff.mean() < TOLERANCE and diff.max() < 0.5


def test_estimated_statistics_are_seamless_but_only_approximate():
    rgb = photo(300, 220)
    reference = untiled("lite", rgb)
    _, _, tiled = network("lite")
    out = tiled.run(rgb, tile=96, stats="sample", stats_memory=1)
    assert tiled.last_run.residual > 1e-3  # it knows its statistics are off
    assert np.abs(out - reference).mean() > TOLERANCE
    assert seam_ratio(np.clip(out, 0, 255), plan_tiles(*padded_size(220, 300), tiled.margin, core=96)) < 1.3


def test_no_seams_along_tile_borders():
    rgb = photo(300, 220)
    reference = untiled("default", rgb)
    _, forward, tiled = network("default")
    out = tiled.run(rgb, tile=96)
    tiles = plan_tiles(*padded_size(220, 300), tiled.margin, core=96)
    assert 0.5 < seam_ratio(out - reference, tiles) < 1.5
    assert abs(seam_ratio(np.clip(out, 0, 255), tiles) - seam_ratio(np.clip(reference, 0, 255), tiles)) < 0.05
    # The measure does see seams: tiles run on their own (own statistics, no context) have them.
    naive = np.empty_like(reference)
    for t in tiles:
        c = t.core
        naive[c.top:c.bottom, c.left:c.right] = run_network(forward, rgb[c.top:c.bottom, c.left:c.right]
                                                            .astype(np.float32))
    assert seam_ratio(np.clip(naive, 0, 255), tiles) > 1.5 * seam_ratio(np.clip(reference, 0, 255), tiles)


@pytest.mark.parametrize("height, width", [(67, 101), (13, 250), (250, 3), (41, 41)])
def test_odd_and_tiny_sizes(height, width):
    rgb = np.random.default_rng(height).uniform(0, 255, (height, width, 3)).astype(np.float32)
    _, _, tiled = network("lite")
    out = tiled.run(rgb, tile=16, margin=tiled.margin)
    assert out.shape == (height, width, 3)
    assert np.abs(out - untiled("lite", rgb)).mean() < TOLERANCE


def test_grey_uint8_input_is_read_as_rgb():
    grey = photo(120, 90)[..., 1]
    _, _, tiled = network("lite")
    out = tiled.run(grey[..., None], tile=48)
    assert np.abs(out - untiled("lite", np.repeat(grey[..., None], 3, axis=2))).mean() < TOLERANCE


# ---------------------------------------------------------------- receptive field and geometry
def test_receptive_radius_from_the_layer_list_bounds_the_real_reach():
    for architecture, expected in (("default", 57), ("lite", 57), ("classic", 66)):
        assert receptive_radius(network(architecture)[0]) == expected
    _, _, tiled = network("default")
    rgb = photo(256, 256)
    stats = tiled.statistics(rgb, "exact")[None]
    call = tiled.compiled()
    core = np.array([[0, 0, 256, 256]], np.int32)
    base = call(rgb[None].astype(np.float32), stats, core)[0][0, 128, 128]

    def moved(distance: int) -> float:
        changed = rgb.astype(np.float32).copy()
        changed[128, 128 + distance] = 255 - changed[128, 128 + distance]
        return float(np.abs(call(changed[None], stats, core)[0][0, 128, 128] - base).max())
    assert moved(tiled.margin + 1) < 1e-3   # beyond the margin: no effect
    assert moved(40) > 1e-3                 # well inside the radius: an effect


def test_tile_plan_partitions_the_image_within_the_memory_budget():
    height, width = padded_size(1150, 1730)  # a 2-megapixel photo
    margin = 60
    for max_pixels in (250_000, 600_000, 10**9):
        tiles = plan_tiles(height, width, margin, max_pixels=max_pixels)
        covered = np.zeros((height, width), np.int32)
        for t in tiles:
            covered[t.core.top:t.core.bottom, t.core.left:t.core.right] += 1
            assert t.window.area <= max_pixels
            assert all(v % ALIGN == 0 for v in (*vars(t.core).values(), *vars(t.window).values()))
            assert t.window.top == max(0, t.core.top - margin)
            assert t.window.right == min(width, t.core.right + margin)
        assert (covered == 1).all()
        assert (len(tiles) > 1) == (max_pixels < height * width)


def test_memory_budget_sets_the_tile_size():
    _, _, tiled = network("lite")
    assert tiled.tile_pixels(tiled.bytes_per_pixel * 500_000) == 500_000
    small = tiled.tile_pixels(16 << 20)
    tiles = plan_tiles(*padded_size(1150, 1730), tiled.margin, max_pixels=small)
    assert len(tiles) > 20 and max(t.window.area for t in tiles) <= small
    # A 16 MB tile budget on a small photo: several tiles, still the whole image's result.
    rgb = photo(300, 200)
    out = tiled.run(rgb, tile_memory=16 << 20)
    assert tiled.last_run.tiles > 1 and tiled.last_run.stats == "exact"
    assert np.abs(out - untiled("lite", rgb)).mean() < TOLERANCE
    # Whether one pass can hold the statistics is the held activations against stats_memory.
    assert tiled.held_bytes(tiles) == sum(t.window.area for t in tiles) * tiled.held_bytes_per_pixel
    tiled.run(rgb[:40, :40], stats_memory=int(tiled.held_bytes(plan_tiles(40, 40, tiled.margin))) - 1,
              stats="auto", huge_stats="sample")
    assert tiled.last_run.stats == "sample"


def test_virtual_padding_matches_run_network():
    for n in (1, 3, 13, 16, 17, 18, 19, 101, 250):
        rgb = np.arange(n * 5 * 3, dtype=np.float32).reshape(n, 5, 3)
        expected, _ = pad_to_multiple(inference._at_least(rgb, inference.MIN_SIDE), 4)
        source = SourceImage(rgb)
        h, w = source.padded
        np.testing.assert_array_equal(source.region(Box(0, 0, h, w)), expected)
    assert MIN_SIDE == inference.MIN_SIDE


def test_moments_are_accurate_far_from_zero():
    x = (1e4 + np.random.default_rng(0).normal(0, 0.5, (300, 200, 4))).astype(np.float32)
    moments = Moments(4)
    moments.add(x[:100])
    moments.add(x[100:])
    mean, var = moments.result()
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 1)), rtol=1e-9)


# ---------------------------------------------------------------- Stylizer: switching over, falling back
@pytest.fixture
def stylizer(tiny_model):
    return Stylizer(tiny_model, device="cpu")


def test_stylizer_tiles_above_the_threshold(stylizer, monkeypatch):
    rgb = photo(160, 120).astype(np.float32)
    whole = stylizer.run(rgb)
    calls = []
    real_run = TiledNetwork.run
    monkeypatch.setattr(TiledNetwork, "run",
                        lambda self, *a, **k: calls.append(1) or real_run(self, *a, **k))
    assert not tiling.should_tile(120, 160)
    stylizer.run(rgb)
    assert calls == []
    monkeypatch.setitem(tiling.TILE_ABOVE_PIXELS, "cpu", 160 * 120 - 1)
    assert not tiling.should_tile(120, 160)  # it fits in the memory available
    monkeypatch.setattr(tiling, "CPU_WHOLE_SHARE", 0.0)
    assert tiling.should_tile(120, 160)
    tiled = stylizer.run(rgb)
    assert calls == [1]
    assert np.abs(tiled - whole).mean() < TOLERANCE


def test_big_photos_run_whole_while_they_fit_in_half_the_available_memory(monkeypatch):
    gib = 1 << 30
    monkeypatch.setattr(tiling, "host_memory", lambda: (24 * gib, 20 * gib))
    assert not tiling.should_tile(3000, 4000)  # 12 MP: 7.7 GB of the 10 GB share
    assert tiling.should_tile(6000, 8660)      # 52 MP: tiled, in bounded memory
    monkeypatch.setattr(tiling, "host_memory", lambda: (8 * gib, 4 * gib))
    assert tiling.should_tile(3000, 4000)
    assert not tiling.should_tile(2000, 2000)  # up to TILE_ABOVE_PIXELS whatever the memory
    monkeypatch.setattr(tiling, "host_memory", lambda: None)  # unreadable: only small photos run whole
    assert tiling.whole_image_limit("cpu") == tiling.TILE_ABOVE_PIXELS["cpu"]
    # A GPU's limit follows its own memory.
    assert tiling.should_tile(3000, 4000, "gpu", 16 * gib) and not tiling.should_tile(3000, 4000, "gpu", 80 * gib)


def test_stylizer_falls_back_to_tiles_when_memory_runs_out(stylizer, monkeypatch):
    rgb = photo(160, 120).astype(np.float32)
    whole = stylizer.run(rgb)

    class ResourceExhaustedError(Exception):
        pass

    real_forward = stylizer._forward

    def forward(x):
        if x.shape[1] * x.shape[2] > 100 * 100:
            raise ResourceExhaustedError("OOM when allocating tensor")
        return real_forward(x)
    monkeypatch.setattr(stylizer, "_forward", forward)
    assert np.abs(stylizer.run(rgb) - whole).mean() < TOLERANCE
    assert stylizer.tiled().last_run is not None

    def broken(x):
        raise ValueError("not a memory problem")
    monkeypatch.setattr(stylizer, "_forward", broken)
    with pytest.raises(ValueError):
        stylizer.run(rgb)


def test_tiled_run_retries_with_smaller_budgets(monkeypatch):
    class OutOfMemoryError(Exception):
        pass

    budgets, fits = [], [100 << 20]

    def run(self, pixels, tile_memory, stats_memory, **options):
        budgets.append((tile_memory >> 20, stats_memory >> 20))
        if tile_memory > fits[0]:
            raise OutOfMemoryError()
        return "done"
    monkeypatch.setattr(TiledNetwork, "run", run)
    tiled = TiledNetwork.__new__(TiledNetwork)
    done = tiling.run_with_retries(tiled, np.zeros((4, 4, 3)), tile_memory=400 << 20, stats_memory=800 << 20)
    assert done == "done"
    assert budgets == [(400, 800), (200, 400), (100, 200)]
    fits[0] = 0  # never enough: it gives up at the floor and says why
    with pytest.raises(OutOfMemoryError):
        tiling.run_with_retries(tiled, np.zeros((4, 4, 3)))
    assert budgets[-1][0] >= tiling.MIN_TILE_MEMORY >> 20 > budgets[-1][0] // 2


@pytest.mark.parametrize("mode, name", [("RGBA", "alpha.png"), ("L", "grey.png"), ("RGB", "photo.jpg")])
def test_big_files_go_through_tiles_and_keep_alpha(stylizer, tmp_path, monkeypatch, mode, name):
    w, h = 150, 110
    rgb = photo(w, h)
    alpha = np.tile(np.linspace(0, 255, w, dtype=np.float32).astype(np.uint8), (h, 1))
    pixels = {"RGBA": np.dstack([rgb, alpha]), "L": rgb[..., 1], "RGB": rgb}[mode]
    source = tmp_path / name
    Image.fromarray(pixels, mode).save(source, **({"quality": 95} if name.endswith(".jpg") else {}))
    options = BlendOptions(strength=0.8, preserve_colors=True)
    # The pixels handed to the encoder: JPEG turns a one-level difference into up to 11 (measured at
    # quality 95), so the files are compared exactly only where the format is lossless.
    encoded = []
    real_save = save_image
    monkeypatch.setattr(stylize, "save_image",
                        lambda target, rgb, alpha=None: encoded.append(to_uint8(rgb)) or real_save(target, rgb,
                                                                                                        alpha))
    whole = stylizer.stylize_file(source, tmp_path / f"whole-{name}", options)
    monkeypatch.setitem(tiling.TILE_ABOVE_PIXELS, "cpu", 1000)
    monkeypatch.setattr(tiling, "CPU_WHOLE_SHARE", 0.0)
    loads = []
    monkeypatch.setattr(stylize, "load_image", lambda *a, **k: loads.append(1))  # the big path must not use it
    tiled = stylizer.stylize_file(source, tmp_path / f"tiled-{name}", options)
    assert loads == [] and stylizer.tiled().last_run.tiles >= 1
    assert np.abs(encoded[0].astype(np.int16) - encoded[1]).max() <= 1
    with Image.open(whole) as a, Image.open(tiled) as b:
        assert a.mode == b.mode and a.size == b.size == (w, h)
        a, b = np.asarray(a).astype(np.int16), np.asarray(b).astype(np.int16)
    diff = np.abs(a - b)
    assert diff.mean() < 0.1 and diff.max() <= (11 if name.endswith(".jpg") else 1)
    if mode == "RGBA":
        np.testing.assert_array_equal(b[..., 3], alpha)


def test_load_pixels_keeps_uint8(tmp_path):
    rgb = photo(40, 30)
    path = tmp_path / "p.png"
    Image.fromarray(rgb).save(path)
    colour, alpha = load_pixels(path)
    assert colour.dtype == np.uint8 and alpha is None
    np.testing.assert_array_equal(colour, load_image(path).rgb)
    deep = tmp_path / "deep.png"
    Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16)).save(deep)
    colour, _ = load_pixels(deep)
    source = SourceImage(colour)
    np.testing.assert_allclose(source.region(Box(0, 0, 30, 40)), load_image(deep).rgb)


def test_one_pass_statistics_budget_follows_free_memory(monkeypatch):
    gb = 1 << 30
    for free, budget in ((0, gb), (2 * gb, gb), (8 * gb, 2 * gb), (64 * gb, tiling.MAX_STATS_MEMORY)):
        monkeypatch.setattr(tiling, "host_memory", lambda free=free: (128 * gb, free))
        assert tiling.stats_memory_for() == budget
    monkeypatch.setattr(tiling, "host_memory", lambda: None)  # unknown: the small, safe budget
    assert tiling.stats_memory_for() == tiling.STATS_MEMORY
    assert tiling.stats_memory_for("gpu", 6 * gb) == tiling.STATS_MEMORY + gb // 2  # a quarter of the card
