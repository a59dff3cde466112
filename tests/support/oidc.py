"""A real OpenID provider on loopback for the OAuth tests: panva's `oidc-provider` (npm).

`oidc_provider()` starts `tests/fixtures/npm/oidc-provider/idp.mjs` under this machine's Node
(installed once with `npm ci`, see `tests.support.node_servers`) on a free loopback port, with
an ES256 signing key generated here, and yields an `OidcProvider`:

- `issuer`: `http://127.0.0.1:<port>`; discovery at `<issuer>/.well-known/openid-configuration`
  (authorization, token and registration endpoints, PKCE S256), keys at `<issuer>/jwks`;
- `token(audience=..., scopes=...)`: a real access token from the token endpoint
  (client_credentials grant of the test client, RFC 8707 `resource` = `audience`): a JWT with
  header `{"alg": "ES256", "typ": "at+jwt", "kid": ...}` and claims `iss`, `aud`, `exp`, `iat`,
  `jti`, `sub`, `client_id`, `scope` (space-separated). `expired=True` gives one whose `exp`
  is two hours past; `not_before_in=N` one with `nbf` N seconds ahead;
- `rotate()`: restarts the provider on the same port with a new key (new `kid`): tokens are
  then signed with it, and the JWKS lists only it.

The provider is a real authorization server; tokens are never minted by the test itself. Tests
that need a broken token (wrong signature, `alg: none`, another audience) derive it from a real
one (`tamper_signature`, `unsigned`).
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.node_servers import npm_project

CLIENT_ID = "mcp-tests"
CLIENT_SECRET = "test-client-secret-not-a-real-one"  # test-only client of the loopback provider
SCOPES = ("mcp:tools", "mcp:admin")
_START_TIMEOUT = 20.0


def _b64url(number: int, size: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(size, "big")).rstrip(b"=").decode()


def _signing_key() -> dict[str, str]:
    """A fresh P-256 private key as a JWK with a new kid."""
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.private_numbers()
    public = numbers.public_numbers
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(public.x, 32),
        "y": _b64url(public.y, 32),
        "d": _b64url(numbers.private_value, 32),
        "kid": uuid.uuid4().hex[:16],
        "alg": "ES256",
        "use": "sig",
    }


class OidcProvider:
    """A running `idp.mjs` (see the module doc)."""

    def __init__(self, workdir: Path) -> None:
        self._project = npm_project("oidc-provider")
        self._workdir = workdir
        self._process: subprocess.Popen[str] | None = None
        self._port = 0
        self.issuer = ""
        self.kid = ""
        self._start()

    def _start(self) -> None:
        key = _signing_key()
        self.kid = key["kid"]
        key_file = self._workdir / "signing-key.json"
        key_file.write_text(json.dumps(key))
        log = (self._workdir / "idp.log").open("a")
        deadline = time.monotonic() + _START_TIMEOUT
        while True:  # on a restart the old socket may linger a moment
            process = subprocess.Popen(
                ["node", str(self._project / "idp.mjs"), str(self._port), str(key_file)],
                cwd=self._project,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.startswith("listening "):
                break
            process.wait(timeout=5)
            if time.monotonic() > deadline:
                raise AssertionError(
                    "the OpenID provider did not start:\n"
                    + (self._workdir / "idp.log").read_text()[-3000:]
                )
            time.sleep(0.2)
        self._process = process
        self.issuer = line.split()[1]
        self._port = int(self.issuer.rsplit(":", 1)[1])

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def token(
        self,
        *,
        audience: str,
        scopes: Sequence[str] = ("mcp:tools",),
        expired: bool = False,
        not_before_in: int | None = None,
    ) -> str:
        """A real access token for `audience` with `scopes` (see the module doc)."""
        form = {
            "grant_type": "client_credentials",
            "resource": audience,
            "scope": " ".join(scopes),
        }
        if expired:
            form["test_exp_offset"] = "-7200"
        if not_before_in is not None:
            form["test_nbf_offset"] = str(not_before_in)
        response = httpx2.post(
            f"{self.issuer}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert isinstance(token, str) and token.count(".") == 2, "not a JWT access token"
        return token

    def rotate(self) -> None:
        """Restart on the same port with a new signing key (and kid)."""
        self.stop()
        self._start()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


@contextmanager
def oidc_provider() -> Iterator[OidcProvider]:
    """A running provider for the `with` block (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="mcp-deploy-idp-") as workdir:
        provider = OidcProvider(Path(workdir))
        try:
            yield provider
        finally:
            provider.stop()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _decode(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def _encode(document: dict[str, object]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(token: str) -> dict[str, object]:
    """The token's payload, unverified (for assertions)."""
    return _decode(_segments(token)[1])


def tamper_signature(token: str) -> str:
    """The same token with one byte of its signature flipped: its signature no longer verifies."""
    header, payload, signature = _segments(token)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join([header, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])


def unsigned(token: str) -> str:
    """The same claims with header `alg: none` and an empty signature (RFC 7519 §6)."""
    header, payload, _signature = _segments(token)
    document = _decode(header)
    document["alg"] = "none"
    return f"{_encode(document)}.{payload}."
