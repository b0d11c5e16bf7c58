"""Mimamori: the platform package (settings, extensions, command line, migrations)."""
