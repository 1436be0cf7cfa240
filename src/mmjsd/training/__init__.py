"""One training run on one device: the trainer, its batches, optimiser, checkpoints, precision,
device placement (runtime, gpu), and opening a finished or paused run (runs).

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts, mmjsd.data, mmjsd.networks, mmjsd.models (the layers below); never a layer above.
"""
