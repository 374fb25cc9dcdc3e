"""Rendering results: the JSON document, Markdown, cross-file comparison, terminal
tables, atomic files.
"""
