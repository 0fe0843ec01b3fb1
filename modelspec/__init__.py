"""modelspec: a YAML spec language for Keras-style models, its linter, and its command line."""

__version__ = "0.1.0"
