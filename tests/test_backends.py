"""Same function across frameworks: the article's PyTorch SmallResNet, Keras's torch backend."""

import keras
import numpy as np
import torch
from conftest import run_python
from torch import nn

import reszoo
from reszoo.weights import load_torch_state_dict


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


def test_smallresnet_computes_the_articles_function_with_its_pytorch_weights():
    torch.manual_seed(0)
    article = ArticleSmallResNet().eval()
    with torch.no_grad():  # trained-looking BN statistics, not PyTorch's 0/1 defaults
        for module in article.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    trainable = sum(p.numel() for p in article.parameters())
    statistics = sum(b.numel() for n, b in article.named_buffers() if "running" in n)
    assert (trainable, statistics) == (43_242, 480)

    # The article feeds tensors straight in: compare with the in-model preprocessing switched off.
    model = reszoo.build("smallresnet", preprocessing="none")
    load_torch_state_dict(model, {k: v.numpy() for k, v in article.state_dict().items()})
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        expected = article(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    ours = np.asarray(model(images, training=False))
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=1e-4)


def test_state_dict_that_does_not_fit_is_refused_whole():
    model = reszoo.build("smallresnet")
    before = [w.copy() for w in model.get_weights()]
    state = {k: v.numpy() for k, v in ArticleSmallResNet().state_dict().items()}
    state["fc.weight"] = state["fc.weight"][:5]
    try:
        load_torch_state_dict(model, state)
    except reszoo.ConfigError as error:
        assert "fc" in str(error)
    else:
        raise AssertionError("a wrong-shaped state_dict was accepted")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_resnet20_on_the_pytorch_backend_gives_the_tensorflow_outputs(tmp_path):
    model = reszoo.build("resnet20")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BN statistics everywhere
        for sub in layer._flatten_layers():
            if isinstance(sub, keras.layers.BatchNormalization) and sub.built:
                g, b, m, v = sub.get_weights()
                sub.set_weights([g, b, rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 2, v.shape)])
    model.save_weights(tmp_path / "resnet20.weights.h5")
    images = rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    expected = np.asarray(model(images, training=False))
    code = f"""
import keras, numpy as np, reszoo
assert keras.backend.backend() == "torch"
model = reszoo.build("resnet20", weights={str(tmp_path / "resnet20.weights.h5")!r})
out = keras.ops.convert_to_numpy(model(np.load({str(tmp_path / "images.npy")!r}), training=False))
np.save({str(tmp_path / "torch_out.npy")!r}, out)
import sys; print("tensorflow imported:", "tensorflow" in sys.modules)
"""
    result = run_python(code, env={"KERAS_BACKEND": "torch"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tensorflow imported: False" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "torch_out.npy"), expected, atol=1e-4, rtol=1e-4)
