"""Synthetic (random-weight) model files with the official layouts, for tests and benchmarks."""

from miodesk.synthetic.codec import write_random_codec

__all__ = ["write_random_codec"]
