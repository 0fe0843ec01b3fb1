"""Config models of the spec's sections, importing no runtime code.

The spec side (`modelspec.schema`, lint, summary) reads these without loading arrays' runtime,
the optimizers, the callbacks or the compiled kernels; the runtime modules build their objects
from them (`engine.optimizers.get`, `engine.spec_callbacks.from_config`, ...).
"""
