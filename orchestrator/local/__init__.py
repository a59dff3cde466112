"""The `local` environment: run artifacts in emulations of their targets, track them, prove them."""
