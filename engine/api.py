"""The tensor API of `import engine as en` (filled in by the engine core)."""
