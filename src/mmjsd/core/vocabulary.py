"""The project's names, defined once: datasets, models, modalities and data sources.

Every module that lists datasets, models, modalities, coherence directions, latent
representations or data sources imports them from here (the Snakefile's wildcard constraints and
the config schema's enums spell the same names; tests/test_config.py checks the schema).
The dSprites factor names and sizes belong to that dataset: mmjsd.data.dsprites.
"""

from __future__ import annotations

DATASETS = ("dsprites", "celeba")
MODELS = ("mmjsd", "mmpoe")                     # the paper's model, then the baseline
MODALITIES = ("img", "text")
# Table 1a's columns: "img" = images generated from text, "text" = text generated from images
DIRECTIONS = ("img", "text")
# Table 1b's rows: the content means of the unimodal posteriors and of the fused one
REPRESENTATIONS = ("img", "text", "joint")

# What each processed-data source means; written into every processed split's notes, every table
# header, the figure title and the report.
SOURCE_DESCRIPTIONS = {
    "official": "the official data",
    "render": "PROCEDURAL STAND-IN: our re-rendering on the official dSprites factor grid, not DeepMind's images",
    "folder": "real CelebA images from a local folder in torchvision's layout",
    "shared-subset": "real CelebA images, a partial copy (held-out split carved from the present images, not the official partition)",
    "torchvision": "real CelebA images downloaded by torchvision",
    "synthetic": "SYNTHETIC STAND-IN: procedural faces, not CelebA",
}
SOURCES = tuple(SOURCE_DESCRIPTIONS)
STAND_IN_SOURCES = ("render", "synthetic")      # procedural data: tests the plumbing, not the paper's claims
