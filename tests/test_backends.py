"""Same function across frameworks: the article's PyTorch SmallResNet, Keras's JAX backend.

The PyTorch side is pinned: tests/torch_reference/make_fixtures.py ran the article's model (written
there as its author wrote it) and saved its state dict, inputs and outputs; this file needs no
PyTorch.
"""

import keras
import numpy as np
from conftest import REPO, run_python

import reszoo
from reszoo.weights import load_torch_state_dict

ARTICLE = REPO / "tests" / "data" / "torch_reference" / "article_smallresnet.npz"


def article_case():
    data = np.load(ARTICLE)
    state = {k.removeprefix("state/"): data[k] for k in data.files if k.startswith("state/")}
    return state, data


def test_smallresnet_computes_the_articles_function_with_its_pytorch_weights():
    state, data = article_case()
    statistics = sum(v.size for k, v in state.items() if "running" in k)
    assert (int(data["trainable"]), statistics) == (43_242, 480)
    # The article feeds tensors straight in: compare with the in-model preprocessing switched off.
    model = reszoo.build("smallresnet", preprocessing="none")
    load_torch_state_dict(model, state)
    ours = np.asarray(model(data["images"], training=False))
    np.testing.assert_allclose(ours, data["logits"], atol=2e-5, rtol=1e-4)


def test_state_dict_that_does_not_fit_is_refused_whole():
    model = reszoo.build("smallresnet")
    before = [w.copy() for w in model.get_weights()]
    state, _ = article_case()
    state["fc.weight"] = state["fc.weight"][:5]
    try:
        load_torch_state_dict(model, state)
    except reszoo.ConfigError as error:
        assert "fc" in str(error)
    else:
        raise AssertionError("a wrong-shaped state_dict was accepted")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_resnet20_on_the_jax_backend_gives_the_tensorflow_outputs(tmp_path):
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
assert keras.backend.backend() == "jax"
model = reszoo.build("resnet20", weights={str(tmp_path / "resnet20.weights.h5")!r})
out = keras.ops.convert_to_numpy(model(np.load({str(tmp_path / "images.npy")!r}), training=False))
np.save({str(tmp_path / "jax_out.npy")!r}, out)
import sys; print("tensorflow imported:", "tensorflow" in sys.modules)
"""
    result = run_python(code, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tensorflow imported: False" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "jax_out.npy"), expected, atol=1e-4, rtol=1e-4)
