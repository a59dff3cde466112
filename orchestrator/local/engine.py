"""`LocalEngine`: deploys requests of local-kind environments to emulations of their targets
on this machine (AWS's Lambda runtime client behind a Function URL front door; a container
under Cloud Run's contract), one deployment per (environment, target), side by side.

Secret values are read from their `env:`/`file:` sources inside `apply`, handed to the
target's local runtime, and kept nowhere else. What runs is written down (`LocalState`) in the
same uninterruptible step that starts it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.deploy.engine import Applied, Change, Deployed, Problem
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.local.state import LocalDeployment, LocalState
from orchestrator.paths import ProjectPaths
from orchestrator.processes import deferred_interrupts
from orchestrator.records import now
from orchestrator.redact import Redactor
from orchestrator.secret_refs import SecretRef
from orchestrator.secret_values import read_secrets
from targets import registry
from targets.base import LocalHandle, LocalLaunch, LocalRuntime, RunsLocally, TargetOptions

Progress = Callable[[str], None]


def runtime_for(target: str) -> LocalRuntime:
    """The target's local runtime; `InputError` when it has none."""
    found = registry()[target]
    if not isinstance(found, RunsLocally):
        runnable = [name for name, t in registry().items() if isinstance(t, RunsLocally)]
        raise input_error(
            "--target",
            f"{found.title} artifacts cannot run on this machine",
            "local runs exist for: " + ", ".join(runnable),
        )
    return found.local_runtime()


def _options(request: DeploymentRequest) -> TargetOptions:
    return registry()[request.target].options_model.model_validate(dict(request.options))


def make_engine(paths: ProjectPaths, **settings: Any) -> LocalEngine:
    """The engine registry's entry point (`orchestrator.deploy.engine.ENGINES`)."""
    return LocalEngine(paths, port=settings.get("port"), mcp_path=settings.get("mcp_path", "/mcp"))


class LocalEngine:
    """See the module docstring. `port` pins the port of the next `apply` (default: the
    previous deployment's, so a redeploy keeps its URL, else a free one). `mcp_path` is the
    server's MCP path, for the URL of a deployment found without its state file."""

    kind = "local"
    needs_published_artifacts = False

    def __init__(
        self, paths: ProjectPaths, port: int | None = None, mcp_path: str = "/mcp"
    ) -> None:
        self.paths = paths
        self.port = port
        self.mcp_path = mcp_path
        self.state = LocalState(paths)

    def _strays(self, environment: str, target: str) -> list[LocalHandle]:
        """What runs for (environment, target) that the state file does not name: left by a
        lost or corrupt state file, found from the processes and containers themselves."""
        if not isinstance(registry()[target], RunsLocally):
            return []
        known = self.state.load(environment, target)
        found = runtime_for(target).find(
            self.paths.deployment_dir(environment, target), self.mcp_path
        )
        return [h for h in found if known is None or _identity(h.data) != _identity(known.handle)]

    def check(
        self,
        environment: str,
        target: str,
        options: TargetOptions,
        secrets: Mapping[str, str],
        runtime: str = "python",
    ) -> list[Problem]:
        """Before anything is built: can this machine run the artifact of a `runtime` server,
        and can every secret be read here (an `InputError` naming each one that cannot)?"""
        problem = runtime_for(target).problem(options, runtime)
        self._secret_values(environment, secrets)
        return [] if problem is None else [Problem(problem.option, problem.message, problem.hint)]

    def _secret_values(self, environment: str, secrets: Mapping[str, str]) -> dict[str, str]:
        refs = {name: SecretRef.parse(ref) for name, ref in secrets.items()}
        return read_secrets(refs, self.paths.root, environment)

    def _redactor(self, environment: str, secrets: Mapping[str, str]) -> Redactor:
        """The values of `secrets` that can be read now (one by one: best effort)."""
        values: dict[str, str] = {}
        for name, ref in secrets.items():
            try:
                values.update(self._secret_values(environment, {name: ref}))
            except (InputError, ValueError):
                continue
        return Redactor(values)

    def launch(self, request: DeploymentRequest, port: int) -> LocalLaunch:
        """The request made runnable: options validated, artifact located, secret values read."""
        store = ArtifactStore(self.paths.store)
        path = store.blob_path(request.artifact.digest)
        state = store.check_blob(request.artifact.digest)
        if state is not BlobState.INTACT:
            damage = "was damaged (discarded)" if state is BlobState.DISCARDED else "is missing"
            raise OperationError(
                f"artifact {request.artifact.digest} {damage} in the store ({store.root})",
                hint="build it again: mcp-deploy build --target " + request.target,
            )
        from orchestrator.artifacts import Artifact

        artifact = Artifact(
            kind=request.artifact.kind,
            target=request.target,
            digest=request.artifact.digest,
            size=request.artifact.size,
            inputs_hash="",
            path=path,
            location=request.artifact.location,
        )
        return LocalLaunch(
            server=request.server,
            environment=request.environment,
            python=request.python,
            runtime=request.runtime,
            runtime_version=request.runtime_version,
            artifact=artifact,
            options=_options(request),
            mcp_path=request.mcp_path,
            variables=dict(request.config),
            secrets=self._secret_values(request.environment, request.secrets),
            state_dir=self.paths.deployment_dir(request.environment, request.target),
            port=port,
        )

    def plan(self, request: DeploymentRequest) -> list[Change]:
        what = f"{registry()[request.target].title} emulation ({request.environment})"
        current = self.current(request.environment, request.target)
        if current is None or not current.running:
            port = f"port {self.port}" if self.port else "a free port"
            return [Change("create", what, f"{request.artifact.digest[:19]} on {port}")]
        differences = []
        if current.artifact_digest != request.artifact.digest:
            differences.append(f"artifact {current.artifact_digest[:19]} -> ")
            differences[-1] += request.artifact.digest[:19]
        if current.request_hash != request.request_hash:
            differences.append("configuration changed")
        detail = "; ".join(differences) or "same request (a redeploy restarts it)"
        return [Change("replace", what, f"{detail}; keeps {current.url}")]

    def apply(self, request: DeploymentRequest, progress: Progress) -> Applied:
        environment, target = request.environment, request.target
        runtime = runtime_for(target)
        previous = self.state.load(environment, target)
        port = self.port or (previous.port if previous is not None else 0)
        launch = self.launch(request, port)
        if previous is not None:
            progress(f"{target}: stopping the previous deployment in {environment}")
            self._stop(runtime, previous)
        for stray in self._strays(environment, target):
            progress(f"{target}: stopping a deployment in {environment} whose state was lost")
            runtime.stop(stray)
        progress(f"{target}: starting {request.artifact.digest[:19]} in {environment}")
        with deferred_interrupts():  # started and written down, or neither
            starting = time.perf_counter()
            try:
                handle = runtime.start_background(launch)
            except OperationError as error:  # its log tail may print the server's secrets
                raise _redacted(error, Redactor(launch.secrets)) from None
            started = time.perf_counter()
            self.state.save(
                LocalDeployment(
                    server=request.server,
                    target=target,
                    environment=environment,
                    url=handle.url,
                    artifact_digest=request.artifact.digest,
                    request_hash=request.request_hash,
                    started=now(),
                    handle=dict(handle.data),
                    secrets=dict(request.secrets),
                )
            )
        outputs = {"start_seconds": started - starting, "host": handle.data.get("host")}
        return Applied(handle.url, outputs)

    def _stop(self, runtime: LocalRuntime, deployment: LocalDeployment) -> None:
        """Stop what is left of it (stopping a part that is gone is harmless) and forget it,
        its log included (a log may hold what the server printed)."""
        runtime.stop(deployment.local_handle)
        self.state.remove(deployment.environment, deployment.target)
        shutil.rmtree(
            self.paths.deployment_dir(deployment.environment, deployment.target),
            ignore_errors=True,
        )

    def destroy(self, environment: str, target: str) -> Deployed | None:
        strays = self._strays(environment, target)
        for stray in strays:
            runtime_for(target).stop(stray)
        deployment = self.state.load(environment, target)
        if deployment is None:
            return _stray(environment, target, strays[0]) if strays else None
        runtime = runtime_for(target)
        running = runtime.alive(deployment.local_handle)
        self._stop(runtime, deployment)
        return _deployed(deployment, running)

    def current(self, environment: str, target: str) -> Deployed | None:
        deployment = self.state.load(environment, target)
        if deployment is None:
            strays = self._strays(environment, target)
            return _stray(environment, target, strays[0]) if strays else None
        return _deployed(deployment, runtime_for(target).alive(deployment.local_handle))

    def forget(self, environment: str, target: str) -> None:
        self.state.remove(environment, target)

    def deployments(self) -> list[Deployed]:
        """Every deployment this engine has on record, checked live."""
        return [_deployed(d, runtime_for(d.target).alive(d.local_handle)) for d in self.state.all()]

    def log_tail(self, environment: str, target: str, lines: int = 40) -> str:
        """The log's last lines, with the secret values that can be read here redacted."""
        deployment = self.state.load(environment, target)
        if deployment is None:
            return ""
        text = runtime_for(target).log_tail(deployment.local_handle, lines)
        return self._redactor(environment, deployment.secrets).clean(text)

    def follow_log(self, environment: str, target: str) -> Iterator[str]:
        deployment = self.state.load(environment, target)
        if deployment is None:
            return
        redactor = self._redactor(environment, deployment.secrets)
        for text in runtime_for(target).follow_log(deployment.local_handle):
            yield redactor.redact(text)[0]

    def run_foreground(self, request: DeploymentRequest, ready: Callable[[str], None]) -> None:
        """Run `request` attached to the terminal until Ctrl-C (nothing is recorded)."""
        runtime_for(request.target).run_foreground(self.launch(request, self.port or 0), ready)


def _redacted(error: OperationError, redactor: Redactor) -> OperationError:
    """`error` with the secret values taken out of its message and detail."""
    message, _ = redactor.redact(error.message)
    detail = redactor.clean(error.detail) if error.detail else error.detail
    return OperationError(message, hint=error.hint, detail=detail)


def _identity(data: Mapping[str, Any]) -> Any:
    """What names a running deployment: its container, else its process."""
    return data.get("container", data.get("pid"))


def _stray(environment: str, target: str, handle: LocalHandle) -> Deployed:
    return Deployed(
        environment=environment,
        target=target,
        url=handle.url,
        artifact_digest="",
        request_hash="",
        since="",
        running=True,
        note="found running without its state file (lost or corrupt); destroy stops it",
    )


def _deployed(deployment: LocalDeployment, running: bool) -> Deployed:
    return Deployed(
        environment=deployment.environment,
        target=deployment.target,
        url=deployment.url,
        artifact_digest=deployment.artifact_digest,
        request_hash=deployment.request_hash,
        since=deployment.started,
        running=running,
        host=str(deployment.handle.get("host") or ""),
    )
