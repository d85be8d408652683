"""The compute devices, detected once for the whole app and published to every view that needs them."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from mlabs_desktop.gui.kit.common import WorkerSet


def _detect() -> list:
    """Worker thread: list the devices (this imports TensorFlow)."""
    from mlabs_desktop.core.hardware import devices  # looked up at call time, so tests can replace it

    return devices.detect_devices()


class DeviceService(QObject):
    """``request()`` starts the one detection; ``found(list)`` or ``failed(str)`` says how it ended.

    A view that asks after the answer is known gets it at once, from ``devices``/``error``.
    """

    found = Signal(list)      # DeviceInfo list
    failed = Signal(str)

    def __init__(self, workers: WorkerSet):
        super().__init__()
        self._workers = workers
        self.devices: list | None = None
        self.error: str | None = None
        self.requested = False

    def request(self) -> None:
        if self.requested:
            return
        self.requested = True
        self._workers.run(_detect, self._found, self._failed, "device-detection", receiver=self)

    def _found(self, devices: list) -> None:
        self.devices = devices
        self.found.emit(devices)

    def _failed(self, message: str) -> None:
        self.error = message
        self.failed.emit(message)
