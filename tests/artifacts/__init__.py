"""Tests of trained-model artifacts: saving, loading, checkpoints, export and reports."""
