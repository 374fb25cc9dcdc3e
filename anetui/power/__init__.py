"""Power sources: one module per source, all yielding :class:`PowerSample` windows;
:mod:`anetui.power.registry` lists them and imports one only when it is chosen.
"""
