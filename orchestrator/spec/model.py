"""The spec: one MCP server, its config, secrets, auth, targets, environments and smoke test.

`ServerSpec` is the typed view; `spec_model()` returns the class that actually validates a spec,
whose `targets` tables are generated from the target registry (so a new target module adds its
`[targets.<name>]` and `[environments.<env>.targets.<name>]` tables here without edits).
Unknown keys are rejected everywhere. Secret *values* are never part of the model: secrets are
declared by name, and environments give each one a `SecretRef` saying where its value comes from.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    create_model,
)

from orchestrator import naming
from orchestrator.secret_refs import FORMS as SECRET_REF_FORMS
from orchestrator.secret_refs import PATTERN as SECRET_REF_PATTERN
from orchestrator.secret_refs import SecretRef
from orchestrator.spec.auth import AuthSection
from orchestrator.spec.server import (
    EnvVarName,
    ServerSection,
    StrictModel,
)
from targets import registry
from targets.base import TargetOptions

EngineKind = Literal["local", "pulumi"]


def _env_name(value: str) -> str:
    problem = naming.dns_label_problem(
        value, max_length=naming.MAX_ENV_NAME, what="an environment name"
    )
    if problem:
        raise ValueError(problem)
    return value


def _config_value(value: Any) -> str:
    """Config values are environment variables: TOML strings, numbers and booleans only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError("a config value must be a string, a number or a boolean")


def _secret_ref(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a secret source must be a string: {SECRET_REF_FORMS}")
    return SecretRef.parse(value)


EnvName = Annotated[str, AfterValidator(_env_name)]
ConfigValue = Annotated[
    str,
    PlainValidator(_config_value),
    WithJsonSchema({"type": ["string", "number", "integer", "boolean"]}),
]
SecretSource = Annotated[
    SecretRef,
    PlainValidator(_secret_ref),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": SECRET_REF_PATTERN}),
]
DEFAULT_EXCLUDES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    ".git/",
    ".venv/",
    "__pycache__/",
    ".mcp-deploy/",
    "node_modules",  # a Node server's dependencies come from its lock file (npm ci)
)


class SecretDeclaration(StrictModel):
    """`[secrets.<NAME>]`: a secret the server reads from the environment variable NAME."""

    description: str = Field("", description="What the secret is for (shown to people).")
    required: bool = Field(True, description="A deploy fails when a required secret has no value.")
    source: SecretSource | None = Field(
        None, description="Default source for every environment (built-in default: env:NAME)."
    )


class SmokeSection(StrictModel):
    """`[smoke]`: the MCP tool call that proves a deployment works."""

    tool: str | None = Field(None, min_length=1, description="Tool to call after deploy.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The call's arguments.")
    expect: str | None = Field(None, description="Substring the tool result must contain.")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds allowed for the smoke test.")
    verify: bool = Field(
        False,
        description="Also run `mcp-deploy verify` (the MCP conformance suite and the auth "
        "discovery chain) after the smoke test; a failure fails the deploy as smoke does.",
    )


class TargetsTable(StrictModel):
    """`[targets]`: one optional table per registered target (generated; see `spec_model`)."""

    def by_name(self) -> dict[str, Any]:
        """Every registered target's table (None when absent), keyed by target name."""
        return {
            (field.alias or key): getattr(self, key)
            for key, field in type(self).model_fields.items()
        }

    def declared(self) -> dict[str, Any]:
        """Only the targets whose table is present."""
        return {name: value for name, value in self.by_name().items() if value is not None}


PulumiBackend = Annotated[
    str,
    Field(
        pattern=r"^(file|s3|gs|azblob|https?)://\S+$",
        examples=["s3://acme-pulumi-state/mcp", "https://api.pulumi.com"],
    ),
]
PulumiSecretsProvider = Annotated[
    str,
    Field(
        pattern=r"^(passphrase|(awskms|gcpkms|azurekeyvault|hashivault)://\S+)$",
        examples=["passphrase", "awskms://alias/pulumi-state?region=eu-west-1"],
    ),
]


class EnvironmentSection(StrictModel):
    """`[environments.<name>]`: a layer over the spec's top level."""

    description: str = Field("", description="What the environment is for.")
    kind: EngineKind | None = Field(
        None,
        description="How it deploys: 'local' runs the artifacts in emulations of their targets "
        "on this machine; 'pulumi' deploys them to the clouds. Default: 'local' for the "
        "environment named local, 'pulumi' for every other.",
    )
    promote_from: EnvName | None = Field(
        None, description="Environment whose deployed artifact this one receives, by digest."
    )
    backend: PulumiBackend | None = Field(
        None,
        description="Pulumi state backend of a pulumi-kind environment: file://DIR, "
        "s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], azblob://CONTAINER or "
        "https://api.pulumi.com. Default: $PULUMI_BACKEND_URL, else a file backend in "
        ".mcp-deploy/pulumi under the project.",
    )
    secrets_provider: PulumiSecretsProvider | None = Field(
        None,
        description="How the stack's state encrypts secret values: passphrase (from "
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE), awskms://…, gcpkms://…, "
        "azurekeyvault://… or hashivault://…. Default: passphrase (Pulumi Cloud: its own).",
    )
    config: dict[EnvVarName, ConfigValue] = Field(
        default_factory=dict, description="Config values that replace or add to `[config]`."
    )
    secrets: dict[EnvVarName, SecretSource] = Field(
        default_factory=dict, description="Where each declared secret's value comes from."
    )
    targets: TargetsTable = Field(
        default_factory=TargetsTable,
        description="Target options that replace `[targets.<name>]` values here "
        "(`targets.lambda.memory = 1024`).",
    )


class ServerSpec(StrictModel):
    """A whole spec file (`mcp-deploy.toml` or `[tool.mcp-deploy]`)."""

    model_config = ConfigDict(title="mcp-deploy spec")

    server: ServerSection
    config: dict[EnvVarName, ConfigValue] = Field(
        default_factory=dict, description="Plain environment variables, on every target."
    )
    secrets: dict[EnvVarName, SecretDeclaration] = Field(
        default_factory=dict, description="Declared secrets, by environment variable name."
    )
    auth: AuthSection = Field(default_factory=AuthSection)
    targets: TargetsTable = Field(default_factory=TargetsTable)
    environments: dict[EnvName, EnvironmentSection] = Field(
        default_factory=dict, description="Environments; `local` exists even when not written."
    )
    smoke: SmokeSection = Field(default_factory=SmokeSection)

    def environment_names(self) -> list[str]:
        """`local` first (it always exists), then the spec's environments in file order."""
        return [naming.LOCAL_ENV, *(n for n in self.environments if n != naming.LOCAL_ENV)]

    def environment(self, name: str) -> EnvironmentSection:
        """The named environment's layer; `local` is empty unless the spec writes it."""
        return self.environments.get(name) or EnvironmentSection()

    def environment_kind(self, name: str) -> EngineKind:
        """The engine `name` deploys through: its `kind`, else local for `local`, else pulumi."""
        declared = self.environment(name).kind
        if declared is not None:
            return declared
        return "local" if name == naming.LOCAL_ENV else "pulumi"

    def is_local(self, name: str) -> bool:
        """True when environment `name` runs on this machine (kind local)."""
        return self.environment_kind(name) == "local"


def _field_name(target_name: str) -> str:
    return target_name.replace("-", "_") + "_"


def _partial(model: type[TargetOptions]) -> type[BaseModel]:
    """`model` with every field optional and unset by default: an environment's overrides."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        fields[name] = (annotation | None, Field(None, description=info.description))
    partial: type[BaseModel] = create_model(
        f"{model.__name__}Override", __base__=StrictModel, __doc__=model.__doc__, **fields
    )
    return partial


@cache
def _targets_table(partial: bool) -> type[TargetsTable]:
    fields: dict[str, Any] = {}
    for name, target in registry().items():
        options = _partial(target.options_model) if partial else target.options_model
        fields[_field_name(name)] = (options | None, Field(None, alias=name))
    suffix = "Overrides" if partial else ""
    table: type[TargetsTable] = create_model(f"Targets{suffix}", __base__=TargetsTable, **fields)
    return table


@cache
def spec_model() -> type[ServerSpec]:
    """The validating spec class, with one `[targets.<name>]` table per registered target."""
    overrides_table = _targets_table(partial=True)
    environment: type[EnvironmentSection] = create_model(
        "Environment",
        __base__=EnvironmentSection,
        targets=(overrides_table, Field(default_factory=overrides_table)),
    )
    targets_table = _targets_table(partial=False)
    model: type[ServerSpec] = create_model(
        "ServerSpec",
        __base__=ServerSpec,
        targets=(targets_table, Field(default_factory=targets_table)),
        environments=(
            dict[EnvName, environment],
            Field(
                default_factory=dict,
                description=ServerSpec.model_fields["environments"].description,
            ),
        ),
    )
    return model


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the spec, for editors."""
    schema = spec_model().model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
