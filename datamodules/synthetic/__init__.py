"""The synthetic benchmark (``str-lightning synth``): procedural motions on the built-in body
model, simulated features with dark / blurred / occluded segments, written as clip shards.
Design and parameters: docs/synthetic.md.
"""

from datamodules.synthetic.command import add_synth_command, run_synth
from datamodules.synthetic.presets import PRESETS, Preset, SplitPlan, get_preset

__all__ = ["PRESETS", "Preset", "SplitPlan", "add_synth_command", "get_preset", "run_synth"]
