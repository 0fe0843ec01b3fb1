"""`modelspec tune`: a hyperparameter search declared in the spec's `tune` section, on Optuna.

`space` reads the search space and applies a trial's values to the spec; `checks` are `lint`'s
findings on the section (neither imports Optuna). `study`, `objective` and `outputs` run the
search and write its folder; they import Optuna, so only the `tune` command loads them.
"""
