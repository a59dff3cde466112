"""OCI images without a daemon: references, a distribution-API client, and image assembly."""
