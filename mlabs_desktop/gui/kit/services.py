"""What the views share, handed to each view instead of reached for as globals."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.settings import Settings, load_settings, save_settings
from mlabs_desktop.gui.kit.common import WorkerSet
from mlabs_desktop.gui.kit.device_service import DeviceService


class Hub(QObject):
    """App-wide notifications between views."""

    library_changed = Signal()              # a model was added, renamed, deleted or updated
    status = Signal(str)                    # "what is running", for the status bar
    error = Signal(str, str)                # title, message: every worker error ends up here
    stylize_with = Signal(str)              # model name: switch to Stylize with this style
    train_from = Signal(str, str)           # model name, mode ("resume" | "fine-tune")
    device_detected = Signal(str)           # label of the compute device, once known


@dataclass
class Services:
    settings: Settings = field(default_factory=load_settings)
    hub: Hub = field(default_factory=Hub)
    workers: WorkerSet = field(default_factory=WorkerSet)  # background jobs, kept until their thread ends
    devices: DeviceService = field(init=False)              # the compute devices, detected once

    def __post_init__(self) -> None:
        self.devices = DeviceService(self.workers)

    def library(self) -> Library:
        # A new Library each time: the folder on disk is the truth, and the
        # settings may have moved it.
        return Library()

    def save_settings(self) -> None:
        save_settings(self.settings)
        self.hub.library_changed.emit()
