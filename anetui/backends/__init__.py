"""Runtimes: one module per runtime (its backends, their availability probes), and
:mod:`anetui.backends.registry`, which lists them and imports one only when needed.
PyTorch's runtime module, :mod:`anetui.backends.torch`, has two helpers beside it:
``torch_base`` (what its backends share, the probes) and ``torch_cuda`` (NVIDIA).
"""
