"""A real backend out-of-memory error at the training step boundary (imported by the OOM tests).

Running a real GPU or host out of memory on CI is neither safe nor repeatable,
so the trainer's real step function is wrapped: the first ``after_steps`` steps
run as they are, and from then on a batch of more than ``max_images`` images
raises TensorFlow's own `ResourceExhaustedError`, as an allocation failure in
the step would. Everything else (checkpoints, resume, events) runs for real.
"""

from __future__ import annotations

import pytest


class OomInjector:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, max_images: int, after_steps: int = 0):
        from mlabs_desktop.core.training import steps

        self.max_images = max_images
        self.after_steps = after_steps
        self.calls = 0                  # step calls across every step function built
        self.failed: list[int] = []     # batch sizes that ran out of memory, in order
        self.ran: list[int] = []        # batch sizes that ran
        real = steps.make_train_step

        def make_train_step(*args, **kwargs):
            step = real(*args, **kwargs)

            def run(batch):
                import tensorflow as tf

                self.calls += 1
                if self.calls > self.after_steps and len(batch) > self.max_images:
                    self.failed.append(len(batch))
                    raise tf.errors.ResourceExhaustedError(
                        None, None, f"OOM when allocating tensor with shape[{len(batch)},32,32,64]")
                self.ran.append(len(batch))
                return step(batch)
            return run

        monkeypatch.setattr(steps, "make_train_step", make_train_step)
