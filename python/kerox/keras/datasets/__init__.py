"""Datasets (``keras.datasets``), available offline."""

from kerox.keras.datasets import mnist

__all__ = ["mnist"]
