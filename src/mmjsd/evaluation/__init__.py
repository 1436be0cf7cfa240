"""Table 1 numbers for one run: the attribute classifiers, coherence, latent classification,
CelebA's conditioning measures and the classifier-free dSprites measures.

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts, mmjsd.data, mmjsd.networks, mmjsd.models, mmjsd.training (the layers below); never a layer above.
"""
