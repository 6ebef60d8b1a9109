"""Hostile input, generated: definitions, overlays, bundles, metrics files, settings, CLI.

Every case asserts the promise of issue 12: a clear error (one line, or one line per
problem with its hint), a non-zero exit, never a traceback, and nothing changed (the
SQLite dump of a prepared database is identical before and after every refusal).
Generation is seeded (``derandomize``) and time-bounded: see ``support.HOSTILE``.
"""
