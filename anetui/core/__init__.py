"""The headless core: configuration, the timed loop, statistics, energy attribution,
the session that owns them, immutable results, environment and privileges.
"""
