"""anetui: measure how fast, and at what energy per inference, a model runs on each backend."""

__version__ = "0.1.0"
