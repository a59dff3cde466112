"""Run a program under Pulumi's mock runtime, offline: no CLI, no credentials, no cloud.

`run_offline(program)` records every resource the program declares (type, name, inputs with
Pulumi's secret markers kept, provider) and resolves its outputs, with fake computed values
from `orchestrator.pulumi.mock_outputs`. It is what `plan --offline` shows and what the program
tests assert on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

from orchestrator.pulumi.mock_outputs import computed


@dataclass(frozen=True)
class Registered:
    """One declared resource: its Pulumi type token, logical name, inputs (wire names, secret
    markers kept) and provider reference."""

    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource and answers with `mock_outputs.computed`."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self._regions: dict[str, str] = {}

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        inputs = dict(args.inputs)
        self.resources.append(Registered(args.typ, args.name, inputs, args.provider))
        if args.typ.startswith("pulumi:providers:") and isinstance(inputs.get("region"), str):
            self._regions[args.name] = inputs["region"]
        region = self._region_of(args.provider)
        return computed(args.typ, args.name, inputs, region)

    def _region_of(self, provider: str | None) -> str:
        # a provider reference is "<urn>::<id>"; the urn ends in "::<name>"
        if provider:
            urn = provider.rsplit("::", 1)[0]
            name = urn.rsplit("::", 1)[-1]
            if name in self._regions:
                return self._regions[name]
        return "eu-west-1"

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], None]:
        return {}, None


@dataclass
class OfflineRun:
    """What a program declared under mocks, and its resolved stack outputs."""

    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, short: str) -> list[Registered]:
        """Resources whose type ends with `short` (e.g. `Function`, `Permission`)."""
        return [r for r in self.resources if r.type.rsplit(":", 1)[-1] == short]

    def one(self, short: str) -> Registered:
        """The one resource of type `short` (AssertionError otherwise)."""
        found = self.of_type(short)
        assert len(found) == 1, f"{len(found)} resources of type {short}"
        return found[0]


def _ensure_event_loop() -> None:
    """Pulumi's runtime asks for the current event loop; an earlier `asyncio.run` leaves none
    set, so set a fresh one then."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_offline(program: Callable[[], dict[str, Any]]) -> OfflineRun:
    """Run `program` (declares resources, returns stack outputs) under fresh mocks; raise what
    it raises."""
    _ensure_event_loop()
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    result = OfflineRun(mocks.resources)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> Any:
        outputs = program()

        async def collect() -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                result.outputs[key] = await output.future()
                if await output.is_secret():
                    result.secret_outputs.add(key)

        return asyncio.ensure_future(collect())

    body()
    return result


def plain_parts(value: Any) -> Iterator[Any]:
    """Every key and leaf of `value` that is not under one of Pulumi's secret markers."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from plain_parts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from plain_parts(item)
    else:
        yield value


def secret_parts(value: Any) -> Iterator[Any]:
    """Every value that sits under one of Pulumi's secret markers."""
    if rpc.is_rpc_secret(value):
        yield rpc.unwrap_rpc_secret(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_parts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_parts(item)
