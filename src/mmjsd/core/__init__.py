"""Base helpers every layer uses: the project's names (vocabulary), where every file lives (paths),
atomic writes and the one JSON / torch reader (files), progress lines for job logs (progress), and
the registry of code from outside the package that a config lists (extensions).

May import: mmjsd.errors (the layers below); never a layer above.
"""
