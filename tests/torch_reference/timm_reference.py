"""PyTorch reference ResNets with exactly timm's parameter names, written here from the
structure of timm/models/resnet.py (BasicBlock, Bottleneck, downsample_conv, downsample_avg,
the 'deep' stem) and timm/layers/squeeze_excite.py (SEModule), because torchvision and timm do
not import next to the pinned torch. Same names => a state dict saved from these modules has the
hub's keys (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, layer1.0.se.fc1, fc, ...).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def se_channels(channels: int) -> int:
    """timm's make_divisible(channels / 16, 8, round_limit=0)."""
    return max(8, int(channels / 16 + 4) // 8 * 8)


class SEModule(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        reduced = se_channels(channels)
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        gate = self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample, groups=1, base_width=64, se=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SEModule(planes) if se else None
        self.downsample = downsample

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample, groups=1, base_width=64, se=False):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64)) * groups)
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.se = SEModule(planes * 4) if se else None
        self.downsample = downsample

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


def downsample(inplanes, outplanes, stride, avg_down):
    if not avg_down:  # timm downsample_conv: Sequential(conv, bn)
        return nn.Sequential(
            nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes)
        )
    pool = (
        nn.Identity()
        if stride == 1
        else nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
    )  # timm downsample_avg: Sequential(pool, conv, bn)
    return nn.Sequential(
        pool, nn.Conv2d(inplanes, outplanes, 1, bias=False), nn.BatchNorm2d(outplanes)
    )


class ResNet(nn.Module):
    """timm's ResNet for the layouts reszoo loads: single or deep stem, B or D shortcuts."""

    def __init__(
        self,
        block,
        layers,
        *,
        groups=1,
        base_width=64,
        deep_stem=False,
        avg_down=False,
        se=False,
        num_classes=1000,
    ):
        super().__init__()
        inplanes = 64
        if deep_stem:  # timm stem_type='deep', stem_width=32
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False),
            )
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for index, (depth, planes) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = []
            for position in range(depth):
                stride = 2 if index > 1 and position == 0 else 1
                outplanes = planes * block.expansion
                down = None
                if stride != 1 or inplanes != outplanes:
                    down = downsample(inplanes, outplanes, stride, avg_down)
                blocks.append(block(inplanes, planes, stride, down, groups, base_width, se))
                inplanes = outplanes
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward_features(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.forward_features(x).mean((2, 3)))


LAYOUTS = {
    # reszoo model -> reference builder (the arguments timm's entrypoint passes)
    "resnet18": lambda d, **k: ResNet(BasicBlock, d, **k),
    "resnet34": lambda d, **k: ResNet(BasicBlock, d, **k),
    "resnet50": lambda d, **k: ResNet(Bottleneck, d, **k),
    "resnet50d": lambda d, **k: ResNet(Bottleneck, d, deep_stem=True, avg_down=True, **k),
    "resnext50_32x4d": lambda d, **k: ResNet(Bottleneck, d, groups=32, base_width=4, **k),
    "resnext101_32x8d": lambda d, **k: ResNet(Bottleneck, d, groups=32, base_width=8, **k),
    "wide_resnet50_2": lambda d, **k: ResNet(Bottleneck, d, base_width=128, **k),
    "seresnet50": lambda d, **k: ResNet(Bottleneck, d, se=True, **k),
}
