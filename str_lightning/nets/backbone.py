"""SPIN's image encoder: a ResNet-50 up to the average pool (2048 features per crop).

The architecture and parameter names are torchvision's ``resnet50`` (v1.5: the bottleneck's
stride on its 3x3 convolution), without the classifier; SPIN's HMR defines the same network
under the same names. It is written out here because the torchvision wheel that pip finds for
a CPU-only torch can be a CUDA build whose import fails (and breaks torchmetrics' imports), so
the package is not a dependency. A SPIN checkpoint's ``model`` state dict loads by keeping its
``conv1.*``, ``bn1.*`` and ``layer1-4.*`` entries (after dropping a DataParallel ``module.``
prefix); the regressor entries (fc1, fc2, dec*, init_*) are not part of the image encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from str_lightning.nets import ModelFileError
from str_lightning.safe_pickle import load_torch_file

FEATURE_DIM = 2048
BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
# BatchNorm's update counter: unused in eval mode, absent from checkpoints of old torch versions.
OPTIONAL_SUFFIX = "num_batches_tracked"
EXPANSION = 4
# (width, blocks, stride) of layer1..layer4
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 convolutions with batch norm, plus the (projected) input."""

    def __init__(self, inputs: int, width: int, stride: int = 1) -> None:
        super().__init__()
        outputs = width * EXPANSION
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outputs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(outputs))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50(nn.Module):
    """Crops ``(B, 3, 224, 224)`` (ImageNet-normalised) to features ``(B, 2048)``
    (non-negative: the average of the last ReLU). Random init as torchvision's."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inputs = 64
        for index, (width, blocks, stride) in enumerate(STAGES, start=1):
            layers = [Bottleneck(inputs, width, stride)]
            layers += [Bottleneck(width * EXPANSION, width) for _ in range(blocks - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            inputs = width * EXPANSION
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def spin_backbone_state_dict(spin_model: dict[str, Tensor], source: str | Path = "SPIN model"
                             ) -> dict[str, Tensor]:
    """The ResNet-50 entries of a SPIN ``model`` state dict, named as torchvision's.

    Raises ModelFileError naming ``source`` and the expected keys that are missing or misshapen.
    """
    state = {k.removeprefix("module."): v for k, v in spin_model.items()}
    backbone = {k: v for k, v in state.items() if k.startswith(BACKBONE_PREFIXES)}
    with torch.device("meta"):
        expected = {k: v.shape for k, v in ResNet50().state_dict().items()}
    missing = sorted(k for k in expected if k not in backbone and not k.endswith(OPTIONAL_SUFFIX))
    mismatched = [f"{k}: expected {tuple(expected[k])}, got {tuple(backbone[k].shape)}"
                  for k in expected if k in backbone and backbone[k].shape != expected[k]]
    unexpected = sorted(set(backbone) - set(expected))
    if missing or mismatched or unexpected:
        raise ModelFileError(f"{source}: not SPIN's ResNet-50: missing {missing[:8]} "
                             f"({len(missing)} in all), shape mismatches {mismatched[:8]}, "
                             f"unexpected {unexpected[:8]}")
    return backbone


def load_spin_backbone(spin_checkpoint: str | Path) -> nn.Module:
    """The ResNet-50 of a SPIN checkpoint file (its ``model`` entry), in eval mode."""
    checkpoint = load_torch_file(spin_checkpoint)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        found = list(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ModelFileError(f"{spin_checkpoint}: expected a SPIN checkpoint with key 'model', "
                             f"found {found}")
    model = ResNet50()
    state = spin_backbone_state_dict(checkpoint["model"], spin_checkpoint)
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent
    return model.eval()

