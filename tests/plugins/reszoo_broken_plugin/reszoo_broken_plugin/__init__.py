"""A plugin that registers one good model, then an invalid one: neither may stay registered."""

import reszoo


def register_half():
    reszoo.register_model("broken_half_good", {"extends": "resnet20", "depths": [1, 1, 1]})
    reszoo.register_model("broken_half_bad", {"extends": "resnet20", "depths": [0, 1, 1]})
