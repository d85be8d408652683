"""What a run does when steps keep failing: how many refused updates in a row end it, and what to tell the user.

A step whose loss or gradients are not finite never touches the weights (`steps.healthy`);
after `MAX_REFUSED_IN_ROW` of them in a row the run stops, the last good weights are saved,
and the message names the likely cause: photos common to every refused batch, else the
parameters outside the range that trains well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mlabs_desktop.core.config import TrainingConfig, unusual_params

MAX_REFUSED_IN_ROW = 5
SHOWN_PHOTOS = 5


def likely_cause(refused: Sequence[tuple[int, tuple[Path, ...]]], config: TrainingConfig) -> str:
    """The photos in every refused batch, else the unusual parameters, else the usual advice."""
    common = set.intersection(*(set(sources) for _, sources in refused)) if refused else set()
    if common:
        names = sorted(str(p) for p in common)
        shown = ", ".join(names[:SHOWN_PHOTOS]) + (f" and {len(names) - SHOWN_PHOTOS} more"
                                                   if len(names) > SHOWN_PHOTOS else "")
        return f"every one of those batches held {shown}: check or remove {'it' if len(names) == 1 else 'them'}"
    unusual = unusual_params(config)
    if unusual:
        return "the parameters are the likely cause: " + "; ".join(unusual)
    return "lower the learning rate or the style weight"


def refused_steps_message(refused: Sequence[tuple[int, tuple[Path, ...]]], config: TrainingConfig,
                          model_name: str, saved_step: int) -> str:
    first = refused[0][0] if refused else saved_step
    return (f"training stopped: {len(refused)} steps in a row (from step {first}) had a loss or gradients that "
            f"were not finite; {likely_cause(refused, config)}. The weights of the last good step are saved in "
            f"'{model_name}' (step {saved_step}): resume it once that is fixed")
