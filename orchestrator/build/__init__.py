"""Building artifacts: sources, vendored dependencies, bytecode, deterministic archives, store."""
