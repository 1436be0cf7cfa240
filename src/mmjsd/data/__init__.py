"""Datasets: raw sources (official files, downloads, a CelebA folder and its manifest), procedural
stand-ins, text encoding, and the processed-split contract (prepare, processed).

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts (the layers below); never a layer above.
"""
