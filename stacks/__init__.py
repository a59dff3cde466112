"""Pulumi programs, one per target: each a pure function of a deployment request.

Programs import their provider SDK themselves, so nothing here is imported on the command line's
start-up path.
"""
