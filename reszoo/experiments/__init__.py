"""Experiments that reproduce published results with reszoo's own trainer."""
