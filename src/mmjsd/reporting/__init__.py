"""From the runs' records to what a reader sees: Table 1 (aggregate), the paper's numbers (paper),
the cell-by-cell verdict, Figure 1, the plots and report.md.

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts, mmjsd.data, mmjsd.networks, mmjsd.models, mmjsd.training, mmjsd.evaluation (the layers below); never a layer above.
"""
