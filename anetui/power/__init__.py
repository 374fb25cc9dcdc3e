"""Power sources: one module per source, all yielding :class:`PowerSample` windows.

Nothing here imports a platform library at import time; :func:`open_source` picks and
imports the source asked for (see :mod:`anetui.power.registry`).
"""
