"""The article's SmallResNet in plain PyTorch, as its author wrote it (PyTorch defaults)."""

import torch
from torch import nn


class ArticleBlock(nn.Module):
    """The article's basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU (PyTorch defaults)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class ArticleSmallResNet(nn.Module):
    """3x3 conv 3->16 with bias, BN, ReLU; 2 blocks at 16; 16->32 stride 2; 1 block at 32; GAP; FC."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(ArticleBlock(16, 16), ArticleBlock(16, 16))
        self.layer2 = nn.Sequential(ArticleBlock(16, 32, 2), ArticleBlock(32, 32))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(x.mean(dim=(2, 3)))
