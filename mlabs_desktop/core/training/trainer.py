"""The trainer: one `TrainingConfig` in, a model in the library out, events on the way.

Runs in whatever thread calls `Trainer.run` (the GUI uses a QThread). Keras's
dtype policy is per thread, so mixed precision is switched on here, in the
training thread, and switched back afterwards. `stop()` may be called from any
thread; it takes effect between steps and always ends with a checkpoint.

A step that runs out of memory ends the run the same way (a checkpoint for the
steps that ran, the model left resumable) and raises `TrainingOutOfMemory`;
`with_smaller_batch` gives the run that goes on with half the batch. A step is
one update with the batch size of its run, so after a change the step counter
goes on from the checkpoint and an epoch counts ``images // batch_size`` steps
of the new size: the run ends later, having seen a few more images than planned.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from mlabs_desktop.core.networks import loss_network as vgg
from mlabs_desktop.core.images.ops import is_flat
from mlabs_desktop.core.config import TrainingConfig, model_steps, run_end, unusual_params
from mlabs_desktop.core.training.dataset import BatchStream, added_since, count_small_images
from mlabs_desktop.core.hardware.devices import (DeviceInfo, choose_device, device_scope, dtype_policy,
                                                 import_keras_quietly)
from mlabs_desktop.core.networks.precision import training_precision
from mlabs_desktop.core.training.distribute import make_strategy, replica_count
from mlabs_desktop.core.errors import UserError
from mlabs_desktop.core.events import DoneEvent, EventCallback, LogEvent, OutOfMemoryEvent, StepEvent
from mlabs_desktop.core.library.store import Library, Model
from mlabs_desktop.core.locks import training_lock
from mlabs_desktop.core.hardware.memory import TrainingOutOfMemory, out_of_memory
from mlabs_desktop.core.training.losses import LossWeights, gram_numpy
from mlabs_desktop.core.training.model_writer import ModelWriter, resume_config
from mlabs_desktop.core.training.guard import MAX_REFUSED_IN_ROW, refused_steps_message
from mlabs_desktop.core.training.inputs import PreparedInputs, prepare_inputs, validate

class Trainer:
    def __init__(self, config: TrainingConfig, on_event: EventCallback | None = None,
                 library: Library | None = None, resume: Model | None = None,
                 replica_devices: list[str] | None = None):
        self.config = validate(config)
        self.replica_devices = replica_devices
        self.on_event = on_event or (lambda event: None)
        self.library = library or Library()
        self.resume_model = resume
        self._stop = threading.Event()

    @classmethod
    def for_resume(cls, name: str, max_steps: int = 0, on_event: EventCallback | None = None,
                   library: Library | None = None, batch_size: int | None = None) -> "Trainer":
        """Continue a model from its checkpoint; ``batch_size`` replaces the one it was trained with."""
        library = library or Library()
        model = library.get(name)
        if not model.has_checkpoint:
            raise UserError(f"model '{model.name}' has no training checkpoint to resume from")
        config = resume_config(model, max_steps)
        return cls(config.replace(batch_size=batch_size) if batch_size else config, on_event, library,
                   resume=model)

    def with_smaller_batch(self, oom: OutOfMemoryEvent) -> "Trainer":
        """The run after ``oom``, with half the batch: from the last checkpoint, or afresh if none was saved."""
        smaller = oom.smaller_batch
        if smaller is None:
            raise ValueError("a batch of one image cannot be halved")
        where = f"continuing from step {oom.checkpoint_step}" if oom.model_name else "starting again"
        self._log(f"out of memory at batch size {oom.batch_size}: {where} with batch size {smaller}", "warning")
        if oom.model_name is None:
            return Trainer(self.config.replace(batch_size=smaller), self.on_event, self.library,
                           replica_devices=self.replica_devices)
        trainer = Trainer.for_resume(oom.model_name, oom.steps_left, self.on_event, self.library, smaller)
        # The manifest does not keep these: they belong to this invocation.
        trainer.config = trainer.config.replace(checkpoint_dir=self.config.checkpoint_dir)
        trainer.replica_devices = self.replica_devices
        return trainer

    def stop(self) -> None:
        """Ask the run to end after the current step, saving a checkpoint."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _log(self, message: str, level: str = "info") -> None:
        self.on_event(LogEvent(message, level))

    def run(self) -> Model:
        import_keras_quietly()  # from any thread: waits while another one is still importing Keras
        config = self.config
        device = choose_device(config.device)
        with dtype_policy(training_precision(device, config.precision)):
            strategy = make_strategy(device, self.replica_devices)
            if strategy and self.config.batch_size % replica_count(strategy):
                raise UserError.worded("{voice.batch_size} {batch} cannot be split evenly across {replicas} GPUs; "
                                       "choose a multiple of {replicas}", batch=self.config.batch_size,
                                       replicas=replica_count(strategy))
            with strategy.scope() if strategy else device_scope(device):
                return self._run(device, strategy)

    def _build(self, inputs: PreparedInputs, writer: ModelWriter):
        import keras

        from mlabs_desktop.core.networks.transform import build_transform_network
        from mlabs_desktop.core.training.steps import make_optimizer

        config = self.config
        loss_net = vgg.build_loss_network(vgg.load_vgg19_weights(inputs.vgg_path))
        features = loss_net(inputs.style[None].astype(np.float32))
        targets = {name: gram_numpy(np.asarray(keras.ops.convert_to_numpy(features[name]))[0])
                   for name in vgg.STYLE_LAYERS}
        net = build_transform_network(config.architecture, writer.input_scale, seed=writer.seed)
        optimizer = make_optimizer(config.learning_rate, net)
        return net, loss_net, targets, optimizer

    def _run(self, device: DeviceInfo, strategy) -> Model:
        writer = ModelWriter(self.library, self.config, self.resume_model)
        with training_lock(writer.target_folder):
            return self._train(device, strategy, writer)

    def _train(self, device: DeviceInfo, strategy, writer: ModelWriter) -> Model:
        from mlabs_desktop.core.networks.inference import make_forward
        from mlabs_desktop.core.training.steps import APPLIED, make_train_step

        config = self.config
        seed = writer.seed
        inputs = prepare_inputs(config, seed)
        stream = inputs.stream
        where = f"{replica_count(strategy)} replicas" if strategy else device.label
        length = (f"{config.steps:,} steps in all" if config.steps else
                  f"{config.epochs} epochs of {stream.steps_per_epoch} steps")
        import keras

        policy = keras.config.dtype_policy().name
        mixed = f", in {policy.replace('_', ' ')}" if policy != "float32" else ""
        self._log(f"training on {where}: {len(stream.paths)} images, {length}{mixed}")
        small, looked = count_small_images(stream.paths, config.image_size)
        if small:
            self._log(f"{small} of {looked} training images checked are smaller than {config.image_size} px and "
                      "are upscaled, which blurs them: use bigger photos or a smaller image size", "warning")
        if is_flat(inputs.style):
            self._log("the style image is almost a single colour, with no texture or brushwork to learn: the "
                      "model can only learn to tint photos that colour; pick a painting for a style", "warning")
        for warning in unusual_params(config):
            self._log(f"{warning}: if training stops by itself, bring it back into that range", "warning")
        if len(stream.paths) < config.batch_size:
            self._log(f"only {len(stream.paths)} images for a batch of {config.batch_size}: "
                      "images are repeated within a batch", "warning")

        net, loss_net, targets, optimizer = self._build(inputs, writer)
        start_step = writer.restore(net, optimizer, self._log)
        step_fn = make_train_step(net, loss_net, targets,
                                  LossWeights(config.content_weight, config.style_weight, config.tv_weight),
                                  optimizer, strategy=strategy)
        forward = make_forward(net)
        writer.begin(inputs, device, len(stream.paths))

        total = model_steps(config, len(stream.paths))
        end_step = run_end(config, len(stream.paths), start_step)
        step = start_step
        started = time.perf_counter()
        rate: float | None = None
        last_saved = start_step
        refused: list[tuple[int, tuple[Path, ...]]] = []  # the steps in a row whose update was refused
        oom_step = 0
        epoch_seen, added_told = start_step // stream.steps_per_epoch, 0
        try:
            if step >= end_step:
                self._log(f"already trained {step} steps of {end_step}; nothing to do")
            for step_index, epoch, batch, sources in stream.batches(start_step, self._stop):
                if step_index >= end_step or self._stop.is_set():
                    break
                if epoch != epoch_seen:
                    epoch_seen, added_told = epoch, self._report_added_files(stream, added_told)
                t0 = time.perf_counter()
                try:
                    losses = step_fn(batch)
                except Exception as exc:  # noqa: BLE001 - each backend has its own memory error
                    if not out_of_memory(exc):
                        raise
                    oom_step = step_index + 1
                    break  # not raised from here: the failed step's tensors go with its traceback
                step = step_index + 1
                if not losses.pop(APPLIED):
                    refused.append((step, sources))
                    self._log(f"step {step} skipped: its loss or gradients were not finite (or too large for Adam), so "
                              f"the weights were not changed (photos in the batch: {', '.join(p.name for p in sources)})", "warning")
                    if len(refused) >= MAX_REFUSED_IN_ROW:
                        break
                    continue
                refused.clear()
                took = time.perf_counter() - t0
                if step_index > start_step:  # the run's first step compiles; keep it out of the estimate
                    rate = config.batch_size / took if rate is None else 0.9 * rate + 0.1 * config.batch_size / took
                writer.record(step, losses)
                self.on_event(StepEvent(
                    step=step, epoch=epoch, total_steps=end_step,
                    content_loss=losses["content"], style_loss=losses["style"], tv_loss=losses["tv"],
                    total_loss=losses["total"], images_per_sec=rate or config.batch_size / took,
                    eta_seconds=(end_step - step) * config.batch_size / (rate or config.batch_size / took),
                    skipped=stream.skipped.count, elapsed_seconds=time.perf_counter() - started))
                if step % config.checkpoint_iterations == 0:
                    self._report_skips(stream)
                    writer.checkpoint(step, net, optimizer, forward, inputs, self.on_event,
                                      time.perf_counter() - started)
                    last_saved = step
        finally:
            # Always leave a usable, resumable model for the steps that ran: refused steps never
            # touched the weights, so those in memory are the last good ones.
            if step > last_saved:
                writer.checkpoint(step, net, optimizer, forward, inputs, self.on_event,
                                  time.perf_counter() - started)
                last_saved = step
        self._report_skips(stream)
        if len(refused) >= MAX_REFUSED_IN_ROW:
            model = writer.finish("stopped", time.perf_counter() - started, stream.skipped.count)
            raise UserError(refused_steps_message(refused, config, model.name, step))
        if oom_step:
            raise self._out_of_memory(writer, oom_step, start_step, last_saved,
                                      time.perf_counter() - started, stream.skipped.count)
        if writer.model is None:
            raise UserError("training stopped before the first step; nothing was saved")
        # Paused: this run's max-steps are done but not the model's steps; Resume goes on from here.
        state = "finished" if step >= total else "paused" if step >= end_step else "stopped"
        model = writer.finish(state, time.perf_counter() - started, stream.skipped.count)
        self.on_event(DoneEvent(model.name, str(model.folder), step, state, time.perf_counter() - started))
        return model

    def _out_of_memory(self, writer: ModelWriter, step: int, start_step: int, saved: int, seconds: float,
                       skipped: int) -> TrainingOutOfMemory:
        """Leave the model resumable, as a stop does, and say where it stands."""
        config = self.config
        if writer.model is not None:
            writer.finish("stopped", seconds, skipped)
        event = OutOfMemoryEvent(config.batch_size, step, saved, writer.model.name if writer.model else None,
                                 start_step + config.max_steps - saved if config.max_steps else 0)
        self.on_event(event)
        return TrainingOutOfMemory(event)

    def _report_added_files(self, stream: BatchStream, told: int) -> int:
        """Say (once per new count) that photos were added since the start; returns the count said.

        The run keeps the files it started with: each epoch's order is a function of
        that list, which is what lets `resume` replay exactly. Resuming rescans.
        """
        added = added_since(stream.scan)
        if added > told:
            self._log(f"{added} image{'s were' if added != 1 else ' was'} added to the training folder since this "
                      "run started; they are used from the next resume (stop, then resume)")
            return added
        return told

    def _report_skips(self, stream: BatchStream) -> None:
        for warning in stream.skipped.warnings():
            self._log(warning, "warning")
