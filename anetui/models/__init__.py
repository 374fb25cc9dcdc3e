"""What runs: model specs, torch loading, the keyed conversion cache and the
converters (``convert/``) to other runtimes' formats.
"""
