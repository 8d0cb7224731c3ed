"""Model definitions in plain torch (no torchvision): the embedded default and the benchmark CNNs.

Imported only inside hook functions: importing this module imports torch.
"""

from __future__ import annotations

import torch
from torch import nn


class DigitsNet(nn.Module):
    """The embedded default model: a small CNN for scikit-learn's 8x8 digits (1x8x8 -> 10 logits)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Like(nn.Module):
    """A ResNet-18-sized CNN (11.7 M parameters, 1.8 GMACs at 224x224) for speed measurements."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        layers = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def resnet18_like(seed: int = 0) -> nn.Module:
    """A randomly initialised ResNet-18-sized CNN with a fixed seed, in eval mode."""
    torch.manual_seed(seed)
    model = ResNet18Like()
    # Non-trivial BatchNorm statistics so that the network's outputs are not degenerate.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def digits_net() -> nn.Module:
    """The embedded default model with its trained weights (from dk's package data), in eval mode."""
    import numpy as np

    from dk.default_model import WEIGHTS_PATH

    model = DigitsNet()
    with np.load(WEIGHTS_PATH, allow_pickle=False) as weights:
        state = {k: torch.from_numpy(weights[k]) for k in weights.files}
    model.load_state_dict(state)
    return model.eval()


class _SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, each with BatchNorm and ReLU6 (the MobileNet/SSD-lite block)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True),
        )


class SSDLiteTiny(nn.Module):
    """A small SSD-lite-style detector for tests and demos (input 3 x image_size x image_size).

    Two feature maps (strides 8 and 16) with three anchors per cell; SSD box offsets are decoded
    in the graph against fixed priors, so the outputs are ``boxes`` [N, A, 4] (x1, y1, x2, y2
    normalised to the input) and ``scores`` [N, A, num_classes] (softmax without the background
    column): what ``dk.vision.detection`` post-processes with its defaults.
    """

    ASPECT_RATIOS = (1.0, 2.0, 0.5)
    SCALES = (0.2, 0.45)
    VARIANCES = (0.1, 0.2)

    def __init__(self, num_classes: int = 3, image_size: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        self.stage1 = nn.Sequential(_SeparableConv(16, 32, 2), _SeparableConv(32, 64, 2))  # stride 8
        self.stage2 = _SeparableConv(64, 96, 2)  # stride 16
        anchors = len(self.ASPECT_RATIOS)
        self.loc = nn.ModuleList([self._head(c, anchors * 4) for c in (64, 96)])
        self.conf = nn.ModuleList([self._head(c, anchors * (num_classes + 1)) for c in (64, 96)])
        sizes = (image_size // 8, image_size // 16)
        self.register_buffer("priors", self._priors(sizes), persistent=False)

    @staticmethod
    def _head(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
            nn.Conv2d(cin, cout, 1),
        )

    def _priors(self, sizes: tuple[int, int]) -> torch.Tensor:
        """Prior boxes (cx, cy, w, h), normalised: per feature map, per cell, per aspect ratio."""
        priors = []
        for size, scale in zip(sizes, self.SCALES):
            for i in range(size):
                for j in range(size):
                    for ratio in self.ASPECT_RATIOS:
                        priors.append([(j + 0.5) / size, (i + 0.5) / size, scale * ratio**0.5, scale / ratio**0.5])
        return torch.tensor(priors, dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1 = self.stage1(self.stem(x))
        f2 = self.stage2(f1)
        n = x.shape[0]
        loc = torch.cat([h(f).permute(0, 2, 3, 1).reshape(n, -1, 4) for h, f in zip(self.loc, (f1, f2))], 1)
        conf = torch.cat(
            [h(f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1) for h, f in zip(self.conf, (f1, f2))], 1
        )
        centre = self.priors[:, :2] + loc[..., :2] * self.VARIANCES[0] * self.priors[:, 2:]
        size = self.priors[:, 2:] * torch.exp(loc[..., 2:] * self.VARIANCES[1])
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1).clamp(0.0, 1.0)
        scores = torch.softmax(conf, dim=-1)[..., 1:]
        return boxes, scores


def ssdlite_tiny(seed: int = 0) -> nn.Module:
    """The SSD-lite-style demo detector (3 classes, 64x64 input), randomly initialised with a fixed
    seed, in eval mode. Export: ``--model dk_torch.models:ssdlite_tiny --shapes input:1x3x64x64
    -o task=detection -o output_names=boxes,scores``."""
    torch.manual_seed(seed)
    model = SSDLiteTiny()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                # He initialisation keeps the signal alive through the depthwise layers, so that
                # the scores depend on the image (torch's default shrinks it to nearly nothing).
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        for head in model.conf:  # confident enough that a plain scene gives boxes above 0.5
            head[-1].weight.mul_(3.0)
    return model.eval()
