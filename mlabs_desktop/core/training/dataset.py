"""Training images: a folder scan and a stream of shuffled, parallel-decoded batches.

Only paths are held in memory; pixels are decoded on the fly by a thread pool
(Pillow releases the GIL while decoding) so decoding overlaps the training
step. Unreadable files are skipped and counted, never fatal, unless nothing
usable remains.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from mlabs_desktop.core.config import steps_per_epoch
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.images.decode import IMAGE_EXTENSIONS, CropVariety, training_crop


@dataclass(frozen=True)
class FolderScan:
    root: Path
    paths: tuple[Path, ...]
    total_bytes: int


def training_folder(root: Path | str) -> Path:
    """``root`` with ``~`` expanded, or a `UserError` when it is missing or not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"training folder not found: {root}")
    if not root.is_dir():
        raise UserError.worded("{voice.train_path} must be a folder of images, but {root} is a file", root=root)
    return root


def scan_folder(root: Path | str) -> FolderScan:
    """Index the image files under ``root`` (recursively), sorted for reproducibility."""
    root = training_folder(root)
    found: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / name
            try:
                total += path.stat().st_size
            except OSError:
                continue
            found.append(path)
    if not found:
        raise UserError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files, "
                        "also in sub-folders)")
    return FolderScan(root, tuple(found), total)


def added_since(scan: FolderScan) -> int:
    """How many image files the folder holds now that ``scan`` did not (0 if it cannot be read now)."""
    try:
        now = scan_folder(scan.root)
    except (UserError, OSError):
        return 0
    return len(set(now.paths) - set(scan.paths))


def count_small_images(paths: tuple[Path, ...], side: int, sample: int = 200) -> tuple[int, int]:
    """(how many of the first ``sample`` images have a shorter side below ``side``, how many were looked at).

    Reads headers only, so it costs milliseconds; training upscales such images, which blurs them.
    """
    from mlabs_desktop.core.images.decode import image_info

    looked = paths[:sample]
    sizes = [image_info(path) for path in looked]
    return sum(1 for size in sizes if size and min(size) < side), len(looked)


@dataclass
class SkipLog:
    """Files that could not be decoded; shared with the trainer for its events."""

    count: int = 0
    recent: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seen: set[Path] = field(default_factory=set, repr=False)

    def add(self, path: Path, reason: str) -> None:
        with self._lock:
            if path in self._seen:
                return
            self._seen.add(path)
            self.count += 1
            self.recent.append(f"{path}: {reason}")

    def warnings(self) -> list[str]:
        """What to tell the user about the files skipped since the last call."""
        with self._lock:
            lines, self.recent = self.recent, []
        return [f"skipped unreadable image {line}" for line in lines]


class BatchStream:
    """Yields float32 batches (B, S, S, 3) in 0..255, epoch by epoch, from a step onwards.

    The order of epoch ``e`` depends only on ``seed`` and ``e``, so resuming at a
    step replays exactly the batches the interrupted run would have seen.
    """

    def __init__(self, scan: FolderScan, batch_size: int, image_size: int, seed: int,
                 workers: int | None = None, prefetch: int = 2, variety: CropVariety = CropVariety()):
        self.scan = scan
        self.variety = variety
        self.root = scan.root
        self.paths = scan.paths
        self.batch_size = batch_size
        self.image_size = image_size
        self.seed = seed
        self.skipped = SkipLog()
        self.workers = workers or max(2, min(8, os.cpu_count() or 2))
        self.prefetch = prefetch

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.paths), self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.paths))
        if len(order) < self.batch_size:
            # Fewer images than one batch: repeat them rather than refuse to train.
            order = rng.choice(len(self.paths), self.batch_size, replace=True)
        return order

    def _decode(self, index: int, rng_seed: tuple[int, ...]) -> np.ndarray | None:
        path = self.paths[index]
        try:
            return training_crop(path, self.image_size, np.random.default_rng(rng_seed), variety=self.variety)
        except UserError as exc:
            self.skipped.add(path, str(exc))
        except Exception as exc:  # a vanished drive or a decoder bug must not end hours of training
            self.skipped.add(path, f"{type(exc).__name__}: {exc}")
        return None

    def _batch_indices(self, start_step: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """(global step, epoch, candidate indices) for every step from ``start_step``."""
        per_epoch = self.steps_per_epoch
        epoch = start_step // per_epoch
        while True:
            order = self.epoch_order(epoch)
            for position in range(start_step - epoch * per_epoch, per_epoch):
                lo = position * self.batch_size
                # Spare candidates (the rest of the epoch, wrapping) stand in for skipped files.
                candidates = np.concatenate([order[lo:], order[:lo]])
                yield epoch * per_epoch + position, epoch, candidates
            epoch += 1
            start_step = epoch * per_epoch

    def _assemble(self, pool: ThreadPoolExecutor, step: int,
                  candidates: np.ndarray) -> tuple[np.ndarray, tuple[Path, ...]]:
        images: list[np.ndarray] = []
        used: list[Path] = []
        cursor = 0
        while len(images) < self.batch_size:
            if cursor >= len(candidates):
                if self.skipped.count >= len(self.paths):
                    if not self.root.is_dir():
                        raise UserError(f"the training folder {self.root} is gone (a drive unplugged or a "
                                        "network share lost?); bring it back and resume")
                    raise UserError(f"none of the {len(self.paths)} training images could be read")
                cursor = 0  # all spares exhausted this round; reuse readable ones
            want = self.batch_size - len(images)
            chunk = candidates[cursor:cursor + want]
            cursor += want
            seeds = [(self.seed, step, int(i), k) for k, i in enumerate(chunk)]
            for index, result in zip(chunk, pool.map(self._decode, chunk, seeds)):
                if result is not None:
                    images.append(result)
                    used.append(self.paths[int(index)])
        return np.stack(images).astype(np.float32), tuple(used)

    def batches(self, start_step: int = 0, stop: threading.Event | None = None
                ) -> Iterator[tuple[int, int, np.ndarray, tuple[Path, ...]]]:
        """Yield (step, epoch, batch, the batch's files) forever from ``start_step``; decoding runs ahead."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        halt = stop or threading.Event()
        finished = threading.Event()

        def produce() -> None:
            try:
                with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
                    for step, epoch, candidates in self._batch_indices(start_step):
                        if halt.is_set() or finished.is_set():
                            return
                        item = (step, epoch, *self._assemble(pool, step, candidates))
                        while not (halt.is_set() or finished.is_set()):
                            try:
                                ready.put(item, timeout=0.1)
                                break
                            except queue.Full:
                                continue
            except BaseException as exc:  # handed to the consumer, raised there
                ready.put(exc)

        producer = threading.Thread(target=produce, name="batch-producer", daemon=True)
        producer.start()
        try:
            while True:
                try:
                    item = ready.get(timeout=0.1)
                except queue.Empty:
                    # A stop request ends the producer without a batch: end the stream
                    # rather than wait forever for one that will never come.
                    if halt.is_set() or not producer.is_alive():
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            finished.set()
            while producer.is_alive():
                try:
                    ready.get(timeout=0.05)
                except queue.Empty:
                    pass
