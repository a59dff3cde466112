"""Helpers shared by the integration tests (test images, local services)."""
