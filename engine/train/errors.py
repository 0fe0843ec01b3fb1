"""The error training raises when it cannot go on."""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a model that is not compiled, data that does not fit)."""
