"""Runtimes: one module per runtime (its backends, their availability probes), and
:mod:`anetui.backends.registry`, which lists them and imports one only when needed.
"""
