"""The modules of a JavaScript Worker bundle (a Node server's: targets/workers/package_node.py,
which a program must not import), as `WorkerVersion.modules` takes them.

The bundle carries `mcp_deploy_worker.json`: the main module's name and every module's name
and type; the types map to the content types Cloudflare's upload API uses for them (the same
wrangler sends: `application/javascript+module` for an ES module, and so on).
"""

from __future__ import annotations

import base64
import json
import zipfile
from typing import Any

import pulumi_cloudflare as cloudflare

from orchestrator.errors import OperationError

METADATA = "mcp_deploy_worker.json"
CONTENT_TYPES = {
    "esm": "application/javascript+module",
    "commonjs": "application/javascript",
    "text": "text/plain",
    "data": "application/octet-stream",
    "json": "application/json",
    "wasm": "application/wasm",
}


def js_metadata(archive: zipfile.ZipFile) -> dict[str, Any]:
    """The bundle's metadata; `OperationError` when it is not a JavaScript Worker bundle."""
    try:
        metadata: dict[str, Any] = json.loads(archive.read(METADATA))
        missing = [key for key in ("main_module", "modules") if key not in metadata]
        if missing:
            raise KeyError(missing[0])
    except (KeyError, ValueError) as error:
        raise OperationError(
            f"the bundle's {METADATA} is missing or unreadable ({error})",
            hint="build the artifact for target workers again",
        ) from None
    return metadata


def js_modules(
    archive: zipfile.ZipFile, metadata: dict[str, Any]
) -> list[cloudflare.WorkerVersionModuleArgs]:
    """Every module the metadata names, main module first, with its content type."""
    main = str(metadata["main_module"])
    modules = []
    for module in sorted(metadata["modules"], key=lambda m: (m["name"] != main, m["name"])):
        name, kind = str(module["name"]), str(module["type"])
        if kind not in CONTENT_TYPES:
            raise OperationError(f"module {name!r} of the bundle has an unknown type {kind!r}")
        try:
            content = archive.read(name)
        except KeyError:
            raise OperationError(f"the bundle names module {name!r} but does not hold it") from None
        modules.append(
            cloudflare.WorkerVersionModuleArgs(
                name=name,
                content_type=CONTENT_TYPES[kind],
                content_base64=base64.b64encode(content).decode(),
            )
        )
    return modules
