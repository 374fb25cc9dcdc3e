"""Dashboard widgets; each renders part of a :class:`~anetui.results.Snapshot`."""
