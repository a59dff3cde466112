"""Image references: `registry[:port]/repository[:tag][@sha256:digest]`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse a fully qualified reference; ValueError (naming the form) otherwise."""
        rest, _, digest = text.partition("@")
        if digest and not _DIGEST.match(digest):
            raise ValueError(f"'{text}': a digest must be sha256:<64 hex digits>")
        registry, slash, path = rest.partition("/")
        if (
            not slash
            or not path
            or ("." not in registry and ":" not in registry and registry != "localhost")
        ):
            raise ValueError(f"'{text}': expected REGISTRY/REPOSITORY[:TAG][@DIGEST]")
        repository, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
        if not colon:
            repository, tag = path, ""
        return cls(registry, repository, tag or None, digest or None)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (or latest)."""
        return self.digest or self.tag or "latest"

    @property
    def scheme(self) -> str:
        """Plain HTTP only for a registry on loopback; HTTPS everywhere else."""
        host = (
            self.registry.rsplit(":", 1)[0]
            if not self.registry.startswith("[")
            else (self.registry.split("]")[0] + "]")
        )
        return "http" if host in LOOPBACK else "https"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
