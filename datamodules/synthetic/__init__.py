"""The synthetic benchmark (``str-lightning synth``): procedural motions on the built-in body
model, simulated features with dark / blurred / occluded segments, written as clip shards.
Design and parameters: docs/synthetic.md.
"""

from datamodules.synthetic.presets import PRESETS, Preset, SplitPlan, get_preset

__all__ = ["PRESETS", "Preset", "SplitPlan", "get_preset"]
