"""A reszoo plugin as a third party would write one: a new block type and models using it."""

from pathlib import Path

import keras

import reszoo
from reszoo.layers import ResidualBlock

# A plugin may also ship plain data: a registry document in registry.json's format.
MODELS_JSON = str(Path(__file__).with_name("models.json"))


@keras.saving.register_keras_serializable(package="reszoo_demo_plugin")
class TripleConvBlock(ResidualBlock):
    """Three 3x3 convolutions, output twice as wide as the stage width."""

    expansion = 2

    def branch_spec(self):
        return [
            (self.filters, 3, self.strides, 1),
            (self.filters, 3, 1, 1),
            (self.filters * self.expansion, 3, 1, 1),
        ]


def register():
    reszoo.register_block("triple_conv", TripleConvBlock)
    reszoo.register_model(
        "demo_triple_net",
        {
            "family": "demo",
            "description": "reszoo-demo-plugin's three-conv network",
            "block": "triple_conv",
            "depths": [1, 1],
            "widths": [8, 16],
            "strides": [1, 2],
            "stem": "cifar",
            "stem_width": 8,
            "input_shape": [32, 32, 3],
            "num_classes": 10,
            "preprocessing": "cifar",
            "params": 13010,
            "macs": 5202240,
        },
    )
