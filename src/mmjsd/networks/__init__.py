"""Encoders, decoders and classifiers per dataset, and the layers they share (common).

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts, mmjsd.data (the layers below); never a layer above.
"""
