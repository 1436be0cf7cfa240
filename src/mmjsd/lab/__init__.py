"""The one switch the lab sets for its own processes: the held-out split a process may read
(holdout: `holdout.enter_selection()` makes a selection tool and its children read `val` and refuse
the test split). The data layer reads it, so it sits below data.

May import: mmjsd.errors, mmjsd.core (the layers below); never a layer above.
"""
