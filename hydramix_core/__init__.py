"""HydraMix: multi-image feature mixing for small-data image classification."""

__version__ = "0.1.0"
