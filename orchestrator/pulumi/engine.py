"""`PulumiEngine`: deploys requests of `kind = "pulumi"` environments to the clouds, through the
Automation API with an inline program (`stacks.program_for(target)`) and the CLI behind one
seam (`orchestrator.pulumi.command.ScrubbedCommand`).

- One stack per (server, target, environment) (`orchestrator.pulumi.settings`); its work
  directory is the deployment's own directory under `.mcp-deploy/state`.
- `check` (before anything is built): a program for the target, a Pulumi CLI, backend and
  secrets-provider settings that can work, every `env:`/`file:` secret readable.
- `plan`: a real preview (`pulumi preview --refresh`) as a list of changes.
- `apply`: `pulumi up --refresh`; engine events become progress lines, secret values redacted.
  The secret values are read here, at the last moment, and handed to the program through its
  closure: never stack config (which the CLI takes on its command line), never the CLI's
  environment. The stack outputs carry the deployment (`mcp_deploy`: request, digest, time,
  record), so another runner with the same backend sees what runs.
- `destroy`: `pulumi destroy`, then the stack is removed.
- A stack locked by another update raises `BusyError` (exit 75); a missing CLI an `InputError`
  with how to install one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pulumi.automation.errors import CommandError

from orchestrator.build.store import ArtifactStore, BlobState
from orchestrator.deploy.engine import Applied, Change, Deployed, OfflinePlan, Problem
from orchestrator.deploy.request import DeploymentRequest
from orchestrator.errors import InputError, OperationError, input_error
from orchestrator.paths import ProjectPaths
from orchestrator.pulumi.command import INSTALL_HINT, find_cli
from orchestrator.pulumi.failures import failure
from orchestrator.pulumi.inline import DEPLOYMENT_OUTPUT, inline_program, read_deployment
from orchestrator.pulumi.settings import (
    StackSettings,
    settings_issues,
    stack_settings,
    state_variables,
)
from orchestrator.redact import Redactor
from orchestrator.secret_refs import SecretRef
from orchestrator.secret_values import read_secrets
from targets.base import TargetOptions

Progress = Callable[[str], None]
ProgramSource = Callable[[str], Any]  # target -> stacks.Program
LOCAL_SOURCES = ("env:", "file:")
STATUS_TAG = "mcp-deploy:status"


def make_engine(paths: ProjectPaths, **settings: Any) -> PulumiEngine:
    """The engine registry's entry point (`orchestrator.deploy.engine.ENGINES`)."""
    return PulumiEngine(
        paths,
        server=settings["server"],
        backend=settings.get("backend"),
        secrets_provider=settings.get("secrets_provider"),
    )


def _programs(target: str) -> Any:
    import stacks

    return stacks.program_for(target)


class PulumiEngine:
    """See the module docstring. `environ` is the environment the CLI's is scrubbed from and
    `env:` secrets are read from (default: this process's); `programs` finds a target's
    program (default: `stacks.program_for`)."""

    kind = "pulumi"
    needs_published_artifacts = True

    def __init__(
        self,
        paths: ProjectPaths,
        server: str,
        backend: str | None = None,
        secrets_provider: str | None = None,
        environ: Mapping[str, str] | None = None,
        programs: ProgramSource = _programs,
    ) -> None:
        self.paths = paths
        self.server = server
        self.backend = backend
        self.secrets_provider = secrets_provider
        self.environ = environ if environ is not None else os.environ
        self.programs = programs
        self._record: dict[str, Any] | None = None
        self._program_error: OperationError | None = None

    # -- settings and the CLI ---------------------------------------------------------------

    def settings(self, environment: str, target: str) -> StackSettings:
        """The stack of (environment, target)."""
        return stack_settings(
            self.paths,
            self.server,
            environment,
            target,
            self.backend,
            self.secrets_provider,
            self.environ,
        )

    def _cli(self) -> Path:
        binary = find_cli(self.environ)
        if binary is None:
            raise input_error("pulumi", "no Pulumi CLI found on this machine", INSTALL_HINT)
        return binary

    def check(
        self,
        environment: str,
        target: str,
        options: TargetOptions,
        secrets: Mapping[str, str],
        runtime: str = "python",
    ) -> list[Problem]:
        """Before anything is built or pushed: see the module docstring."""
        import stacks

        if target not in stacks.program_names():
            raise input_error(
                "--target",
                f"target '{target}' has no Pulumi program",
                "programs exist for: " + ", ".join(stacks.program_names()),
            )
        issues = settings_issues(self.settings(environment, target), environment, self.environ)
        if issues:
            raise InputError(issues)
        self._cli()
        self._secret_values(environment, secrets)
        return []

    def _secret_values(self, environment: str, secrets: Mapping[str, str]) -> dict[str, str]:
        """The values of the `env:`/`file:` secrets (the clouds read the others themselves)."""
        refs = {
            name: SecretRef.parse(ref)
            for name, ref in secrets.items()
            if ref.startswith(LOCAL_SOURCES)
        }
        return read_secrets(refs, self.paths.root, environment)

    def _withheld(self, secrets: Mapping[str, str]) -> list[str]:
        """Variables `env:` secrets come from: never passed to the CLI."""
        return [ref.removeprefix("env:") for ref in secrets.values() if ref.startswith("env:")]

    def _workspace(
        self,
        environment: str,
        target: str,
        program: Callable[[], None],
        withheld: list[str],
        create: bool,
    ) -> Any:
        """The stack (`pulumi.automation.Stack`), created when `create` and missing; None when
        it does not exist and `create` is false."""
        from pulumi import automation as auto

        from orchestrator.pulumi.command import ScrubbedCommand, cli_environment

        settings = self.settings(environment, target)
        issues = settings_issues(settings, environment, self.environ)
        if issues:
            raise InputError(issues)
        import stacks

        variables = (*stacks.provider_environment(target), *state_variables(settings))
        environment_vars = cli_environment(self.environ, variables, withheld)
        try:
            command = ScrubbedCommand(self._cli(), environment_vars)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            raise OperationError(
                f"the Pulumi CLI does not run: {error}", hint=INSTALL_HINT
            ) from None
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        if settings.backend_url.startswith("file://"):  # the CLI wants the directory to exist
            Path(urlsplit(settings.backend_url).path).mkdir(parents=True, exist_ok=True)
        options = auto.LocalWorkspaceOptions(
            work_dir=str(settings.work_dir),
            pulumi_command=command,
            project_settings=auto.ProjectSettings(
                name=settings.project,
                runtime="python",
                backend=auto.ProjectBackend(url=settings.backend_url),
            ),
            secrets_provider=settings.secrets_provider,
        )
        try:
            if create:
                return auto.create_or_select_stack(
                    stack_name=settings.stack,
                    project_name=settings.project,
                    program=program,
                    opts=options,
                )
            return auto.select_stack(
                stack_name=settings.stack,
                project_name=settings.project,
                program=program,
                opts=options,
            )
        except auto.StackNotFoundError:
            return None
        except CommandError as error:
            raise self._fail(f"could not open stack {settings.stack}", error, None) from None

    def _fail(self, what: str, error: Exception, redactor: Redactor | None) -> OperationError:
        """The error to raise for a failed CLI call: the program's own refusal when it
        refused the request, else `failure(...)`."""
        if self._program_error is not None:
            refused, self._program_error = self._program_error, None
            return refused
        return failure(what, error, redactor)

    # -- the protocol ---------------------------------------------------------------------

    def plan_offline(self, request: DeploymentRequest) -> OfflinePlan:
        """The program under Pulumi's mock runtime (`orchestrator.pulumi.offline_plan`)."""
        from orchestrator.pulumi.offline_plan import plan_offline

        return plan_offline(request, self._artifact_path(request))

    def attach_record(self, record: Mapping[str, Any]) -> None:
        """The record of the next `apply`: exported with the stack's outputs."""
        self._record = dict(record)

    def _program(
        self, request: DeploymentRequest, secret_values: Mapping[str, str]
    ) -> Callable[[], None]:
        def refused(error: OperationError) -> None:
            self._program_error = error

        return inline_program(
            self.programs(request.target),
            request,
            secret_values,
            str(self._artifact_path(request)),
            self._record,
            refused,
        )

    def _artifact_path(self, request: DeploymentRequest) -> Path:
        store = ArtifactStore(self.paths.store)
        path = store.blob_path(request.artifact.digest)
        if store.check_blob(request.artifact.digest) is not BlobState.INTACT:
            raise OperationError(
                f"artifact {request.artifact.digest} is missing or damaged in the store "
                f"({store.root})",
                hint="build it again: mcp-deploy build --target " + request.target,
            )
        return path

    def _stack_for(self, request: DeploymentRequest) -> tuple[Any, Redactor]:
        """The request's stack (created when missing) running its program, and the redactor
        of the secret values read for it (now, at the last moment)."""
        values = self._secret_values(request.environment, request.secrets)
        stack = self._workspace(
            request.environment,
            request.target,
            self._program(request, values),
            self._withheld(request.secrets),
            create=True,
        )
        return stack, Redactor(values)

    def plan(self, request: DeploymentRequest) -> list[Change]:
        """A real preview: what `apply(request)` would change in the cloud."""
        from orchestrator.pulumi.events import EventReporter

        stack, redactor = self._stack_for(request)
        reporter = EventReporter(request.target, lambda _line: None, redactor)
        try:
            stack.preview(on_event=reporter, color="never", refresh=True)
        except CommandError as error:
            raise self._fail(
                f"the preview of {request.target} in '{request.environment}' failed",
                error,
                redactor,
            ) from None
        return [c for c in reporter.changes if c.action != "keep"] or [
            Change("keep", f"stack {self.settings(request.environment, request.target).stack}")
        ]

    def apply(self, request: DeploymentRequest, progress: Progress) -> Applied:
        """`pulumi up` (see the module docstring)."""
        from orchestrator.pulumi.events import EventReporter

        settings = self.settings(request.environment, request.target)
        progress(f"{request.target}: stack {settings.project}/{settings.stack}")
        stack, redactor = self._stack_for(request)
        reporter = EventReporter(request.target, progress, redactor)
        try:
            result = stack.up(on_event=reporter, color="never", refresh=True)
        except CommandError as error:
            raise self._fail(
                f"the update of {request.target} in '{request.environment}' failed",
                error,
                redactor,
            ) from None
        outputs = {
            name: "[secret]" if output.secret else output.value
            for name, output in result.outputs.items()
        }
        url = str(outputs.get("url") or "")
        if not url:
            raise OperationError(
                f"the {request.target} program exported no url",
                hint="the program must return an output named url",
            )
        outputs.pop(DEPLOYMENT_OUTPUT, None)
        return Applied(url, {**outputs, "host": urlsplit(url).hostname or ""})

    def keep_status(self, environment: str, target: str, status: str) -> None:
        """Tag the stack with the deployment's status after its smoke test."""
        stack = self._workspace(environment, target, _nothing, [], create=False)
        if stack is None:
            return
        try:
            stack.workspace.set_tag(stack.name, STATUS_TAG, status)
        except CommandError as error:
            raise self._fail(f"could not tag stack {stack.name}", error, None) from None

    def recorded(self, environment: str, target: str) -> dict[str, Any] | None:
        """The record in the stack's `mcp_deploy` output, its status from the stack's tag."""
        stack = self._workspace(environment, target, _nothing, [], create=False)
        if stack is None:
            return None
        try:
            outputs = {name: output.value for name, output in stack.outputs().items()}
            status = stack.workspace.list_tags(stack.name).get(STATUS_TAG)
        except CommandError as error:
            raise self._fail(f"could not read stack {stack.name}", error, None) from None
        record = read_deployment(outputs).get("record")
        if not isinstance(record, dict):
            return None
        url = outputs.get("url")
        return {**record, "status": status or "applied", "url": str(url or "")}

    def destroy(self, environment: str, target: str) -> Deployed | None:
        """`pulumi destroy` and the stack removed; None when there is no stack."""
        import stacks

        if target not in stacks.program_names():
            return None
        stack = self._workspace(environment, target, _nothing, [], create=False)
        if stack is None:
            return None
        before = self._deployed(stack, environment, target)
        try:
            stack.destroy(color="never")
            stack.workspace.remove_stack(stack.name)
        except CommandError as error:
            raise self._fail(
                f"the destroy of {target} in '{environment}' failed", error, None
            ) from None
        shutil.rmtree(self.settings(environment, target).work_dir, ignore_errors=True)
        return before

    def current(self, environment: str, target: str) -> Deployed | None:
        """What the stack's outputs say runs (from the backend: any runner sees the same)."""
        stack = self._workspace(environment, target, _nothing, [], create=False)
        return None if stack is None else self._deployed(stack, environment, target)

    def _deployed(self, stack: Any, environment: str, target: str) -> Deployed | None:
        try:
            outputs = {name: output.value for name, output in stack.outputs().items()}
            status = stack.workspace.list_tags(stack.name).get(STATUS_TAG, "")
        except CommandError as error:
            raise self._fail(f"could not read stack {stack.name}", error, None) from None
        deployment = read_deployment(outputs)
        if not deployment:
            return None
        return Deployed(
            environment=environment,
            target=target,
            url=str(outputs.get("url") or ""),
            artifact_digest=deployment.get("artifact_digest", ""),
            request_hash=deployment.get("request_hash", ""),
            since=deployment.get("deployed_at", ""),
            running=True,
            note=f"stack {stack.name}" + (f", last smoke test: {status}" if status else ""),
            host=urlsplit(str(outputs.get("url") or "")).hostname or "",
        )

    def forget(self, environment: str, target: str) -> None:
        """Drop the local work directory (the stack itself lives in the backend)."""
        shutil.rmtree(self.settings(environment, target).work_dir, ignore_errors=True)


def _nothing() -> None:
    """The program of a stack opened only to read or destroy it."""
