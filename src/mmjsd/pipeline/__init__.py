"""What drives and checks whole runs: the job table every rule, `status` and the checks read (jobs),
the Snakefile's set-up at parse time and before the jobs (startup), the checks of outputs on disk
and of what planned jobs read (integrity), job order (schedule), `mmjsd status`, adopting `dvc
pull`ed outputs (pulled) and `mmjsd verify`.

May import: mmjsd.errors, mmjsd.core, mmjsd.lab, mmjsd.artifacts, mmjsd.data, mmjsd.networks, mmjsd.models, mmjsd.training, mmjsd.evaluation, mmjsd.reporting, mmjsd.config (the layers below); never a layer above.
"""
