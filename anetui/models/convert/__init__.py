"""Converters from a torch model to another runtime's format, each cached by key."""
