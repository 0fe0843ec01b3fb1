"""Training: compile, the planned step (flat parameters, executor, trainer) and the loops.

One concept per module: `config` (the spec's fit section), `compile`, `flat_params`,
`executor`, `trainer`, `tracker` (running loss and metrics), `prepare` (arrays in, batches
out), `adapt`, `interrupt` (Ctrl-C), `loops` (fit/evaluate/predict) and `state` (resume).
"""
