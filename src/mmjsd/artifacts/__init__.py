"""What made each artifact and what it records: each step's config keys and code digest (steps),
fingerprints and the check a consumer makes before using a file (fingerprints), provenance and
the headline metrics written beside each record (provenance, summary).

May import: mmjsd.errors, mmjsd.core, mmjsd.lab (the layers below); never a layer above.
"""
