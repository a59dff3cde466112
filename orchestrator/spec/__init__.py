"""The spec file: model, loading, locating keys in the file, and cross-checks."""
