"""Pictures of models and runs: training curves, architecture diagrams, the HTML report."""
