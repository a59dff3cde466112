// Command mcp-deploy-launch is mcp-deploy's launcher for `server.runtime = "binary"`: it
// stands in front of a server executable (Rust, Go, ...) that serves MCP streamable HTTP on
// $PORT, or serves a stdio MCP server (a Node package from npm, a stdio binary) over MCP
// streamable HTTP itself (stdio mode, point 9), and does mcp-deploy's runtime duties where
// there is no Python. It is
// /var/task/bootstrap in a Lambda zip (runtime provided.al2023, behind AWS's Lambda Web
// Adapter) and /app/mcp-deploy-launch in a Cloud Run image (from scratch, uid 65532,
// read-only root filesystem). Standard library plus two pinned modules (go.sum):
// github.com/golang-jwt/jwt/v5 (JWT parsing and signature checks of mode "oauth") and
// golang.org/x/crypto/x509roots/fallback (root certificates where the system has none);
// built static (CGO_ENABLED=0).
//
// Contract:
//
//  1. Configuration: mcp_deploy_runtime.json in the directory of the launcher's own
//     executable (symlinks resolved). Keys: "binary" (the server executable, relative to that
//     directory), "path" (the MCP path, for the start-up line), "health_path" (string or
//     null), "auth" {"mode": "bearer"|"iam"|"none"|"oauth", "token_env": NAME, the oauth
//     keys, "allowed_origins"} (orchestrator/build/auth_config.py), "secrets" (names,
//     informational); for the stdio mode "transport": "stdio", "command" (argv, non-empty)
//     and optionally "request_timeout" (seconds, default 60) instead of "binary". Unknown
//     keys are ignored. A missing or invalid file: a stderr line naming the file, exit 1.
//  2. Secrets, stdin form (local Cloud Run emulation): with MCP_DEPLOY_SECRETS_STDIN=1 the
//     first line of stdin is a JSON object NAME -> value; each becomes an environment
//     variable of the server (and is seen by the gate).
//  3. Secrets, Lambda form: with MCP_DEPLOY_SECRET_ARNS (a JSON object NAME -> Secrets
//     Manager ARN) each secret is read with GetSecretValue, in parallel, signed with AWS
//     Signature Version 4 (service secretsmanager, region AWS_REGION, credentials
//     AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), at
//     AWS_ENDPOINT_URL_SECRETS_MANAGER (else AWS_ENDPOINT_URL, as boto3 does, else
//     https://secretsmanager.<region>.amazonaws.com). Throttling (400 ThrottlingException,
//     429), 5xx answers and transport errors are retried with backoff (4 attempts). Any
//     failure: one stderr line per failed secret naming the secret NAME and AWS's error
//     type and message, exit 1. MCP_DEPLOY_SECRET_ARNS and MCP_DEPLOY_SECRETS_STDIN are not
//     passed on to the server. Secret values are never written anywhere but the server's
//     environment.
//  4. Gate (gate.go, origin.go, oauth.go, jwks.go; the contract every runtime's gate keeps,
//     docs/auth.md), in this order. The public base URL of a request is
//     MCP_DEPLOY_PUBLIC_URL when set (its scheme://host[:port]; not an http(s) URL: a
//     start-up error), else on Lambda https:// + Host (the Web Adapter forwards the Function URL's
//     Host), else (Cloud Run) X-Forwarded-Proto (http/https, default https) :// Host.
//     a. The health path is always open.
//     b. Mode "oauth": GET/HEAD /.well-known/oauth-protected-resource and the same + the MCP
//     path answer the Protected Resource Metadata (resource, authorization_servers,
//     bearer_methods_supported, scopes_supported), CORS-open; OPTIONS 204; else 405.
//     c. Every mode: an Origin header that is neither the base URL's origin nor one of
//     auth.allowed_origins (case-insensitive) is refused 403 with a JSON-RPC error.
//     d. Mode "bearer" (as targets/shim/mcp_deploy_gate.py's BearerGate): exactly one
//     Authorization header "Bearer <token>" whose token equals the environment variable
//     token_env (constant-time); more than one Authorization header, or a value with a
//     comma, is 400; anything else 401 (the gate's REFUSALS). An empty or missing token, or
//     one with a comma, is a start-up error (fail closed). Modes "iam" and "none" let
//     everything through. Mode "oauth": 400 as bearer's; no bearer token: 401 with
//     WWW-Authenticate: Bearer resource_metadata="...", scope="..."; a token that is not a
//     JWT signed (alg in auth.algorithms, never none/HMAC) by the issuer's key for its kid,
//     with iss, audience (aud, or client_id), exp (required) and nbf right, no leeway: 401
//     error="invalid_token"; valid but without every required scope: 403
//     error="insufficient_scope"; the issuer's keys cannot be fetched: 503. The JWKS
//     (auth.jwks_uri, else discovered from the issuer's OpenID or RFC 8414 metadata) is
//     cached 10 minutes and fetched again for an unknown kid at most every 5 s; 5 s timeout.
//     e. Let through: Origin removed, X-Forwarded-Host the request's Host, X-Forwarded-Proto
//     the inbound one (http/https) or https, Authorization unchanged.
//  5. The server is started as a child: argv just the path of "binary" (relative to the
//     launcher's directory), or "command" (its program relative to that directory when it
//     holds a slash, else found on PATH: e.g. ["node", "dist/index.js"]), cwd the launcher's
//     directory, the launcher's environment plus the secrets but without the gate's token
//     (token_env: the server never needs it), PORT=<a free loopback port>
//     and HOST=127.0.0.1 (unless HOST is set); stdin /dev/null, stdout/stderr shared with
//     the launcher (the platform's log). The launcher waits (polling every 5 ms, up to 60 s)
//     until 127.0.0.1:<port> accepts TCP connections. If the child exits first, a stderr
//     line and exit with the child's status (1 if that was 0; 128+n for signal n).
//  6. Only then the launcher listens, on $AWS_LWA_PORT, else $PORT, else 8080; bind address
//     $MCP_DEPLOY_HOST, else 127.0.0.1 when AWS_LAMBDA_RUNTIME_API is set (Lambda: the
//     adapter is local), else 0.0.0.0 (Cloud Run). Requests the gate lets through are
//     reverse-proxied to http://127.0.0.1:<port> (the server sees Host 127.0.0.1:<port>,
//     the original host and scheme in X-Forwarded-Host and X-Forwarded-Proto, no Origin,
//     the client chain in X-Forwarded-For). Bodies stream both ways; responses are flushed as
//     they come (SSE).
//     On Lambda (AWS_LAMBDA_RUNTIME_API set) a GET on the MCP path is answered 405 (Allow:
//     POST, DELETE) as the Python and Node Lambda shims answer it: the Web Adapter buffers
//     each response, so an SSE stream would hold the invocation until its timeout.
//  7. SIGTERM/SIGINT: stop accepting, forward SIGTERM to the server, wait for in-flight
//     requests and the server up to 8 s (Cloud Run kills 10 s after SIGTERM), then SIGKILL
//     it. Exit 0 when the server ended cleanly (exit status 0, or ended by that SIGTERM:
//     killed by it or exit status 143), else its status (1 when it had to be killed). If the
//     server exits on its own, the launcher logs it and exits with its status (1 if 0).
//  8. The child is reaped (as PID 1, e.g. in a container, orphans are reaped too) and dies
//     with the launcher (parent-death signal SIGKILL).
//  9. Stdio mode ("transport": "stdio"; stdio_*.go): points 1-4 hold; instead of 5-7 the
//     launcher listens at once (address as in 6) and serves MCP streamable HTTP itself on
//     "path" (default /mcp, also with a trailing slash), stateless, JSON responses
//     (application/json), behind the same gate, bridging to ONE warm stdio child exactly as
//     targets/shim/mcp_deploy_stdio.py's docstring says:
//     - the child is started with the first request that needs it: argv "command", its
//     first element looked up on PATH, or relative to the launcher's directory when it
//     contains a slash; cwd the launcher's directory; stdin/stdout pipes (newline-delimited
//     JSON-RPC), stderr copied to the launcher's line by line as "[mcp-server <pid>] ...";
//     a session (process group) of its own; SIGKILL when the launcher dies. Its environment
//     is the launcher's with the secrets, minus every MCP_DEPLOY_* variable and the gate's
//     token_env (the gate's business); PYTHONUNBUFFERED=1 unless set; when HOME is unset or
//     not a writable directory, a fresh directory in the temp directory (removed at exit).
//     - the launcher initializes it once (initialize with the newest handshake version it
//     knows, then notifications/initialized) and caches the InitializeResult; a client's
//     initialize is answered from the cache (protocolVersion: the client's when the child
//     speaks it, i.e. the child's own or an older known handshake version, else the
//     child's); notifications/initialized is answered 202 and not forwarded;
//     server/discover is answered -32601. Other requests are forwarded under integer ids
//     unique for the life of the launcher and answered under the caller's id; one reader
//     matches concurrent replies by id. Client notifications reach a running child (202);
//     notifications/cancelled is mapped to the bridge id when exactly one request in flight
//     carries that id (else dropped), and that request is answered -32800 at once. Client
//     responses are dropped (202). A batch is handled element by element, concurrently.
//     - server-to-client requests are answered by the launcher (ping: {}; anything else
//     -32601); server notifications are logged to stderr.
//     - failures are HTTP 200 with a JSON-RPC error under the caller's id: the child cannot
//     start, or exits or closes stdout before answering: -32000 (data.exitCode), for every
//     request in flight; the next request starts a new child; a request that could not be
//     written to a dead child is retried once on a new one. No answer within
//     request_timeout: -32001, and notifications/cancelled to the child, which keeps
//     running. HTTP refusals (after the gate's, point 4): 400 (-32700 parse error, -32600
//     invalid request, -32022 an MCP-Protocol-Version it does not speak, with
//     data.supported), 404 another path, 405 (Allow: POST) any method but POST, 406 an
//     Accept header without application/json (or application/*, */*), 413 a body over
//     16 MiB, 415 a Content-Type other than application/json. The health path answers 200
//     {"status": "ok"}.
//     - SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to 4 s), then stop
//     the child: close its stdin, SIGTERM (its process group) after 2 s, SIGKILL after 2 s
//     more. Exit 0 when there was no running child or it ended cleanly (as in 7), 1 when it
//     had to be killed, else its status. The child's own death never ends the launcher.
//     One reaper collects every child (and, as PID 1, orphans).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	programName = "mcp-deploy-launch"
	configName  = "mcp_deploy_runtime.json"
)

func main() {
	os.Exit(run())
}

// logf writes one line, prefixed with the program's name, to stderr (the platform's log).
func logf(format string, args ...any) {
	line := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	fmt.Fprintf(os.Stderr, "%s: %s\n", programName, line)
}

// run does the whole job and returns the process's exit status.
func run() int {
	dir, err := executableDir()
	if err != nil {
		logf("cannot locate my own executable: %v", err)
		return 1
	}
	config, err := loadConfig(filepath.Join(dir, configName))
	if err != nil {
		logf("%v", err)
		return 1
	}
	env := environMap(os.Environ())
	secrets, err := readSecrets(env, os.Stdin)
	if err != nil {
		logf("%v", err)
		return 1
	}
	for name, value := range secrets {
		env[name] = value
	}
	delete(env, secretArnsVariable)
	delete(env, secretsStdinVariable)

	onLambda := env["AWS_LAMBDA_RUNTIME_API"] != ""
	gate, err := newGate(config.Auth, config.Path, config.HealthPath, env, env[publicURLVariable], onLambda)
	if err != nil {
		logf("%v", err)
		return 1
	}
	listenAddr := listenAddress(os.Getenv)
	if config.stdio() {
		return serveStdio(config, dir, env, listenAddr, gate)
	}
	childPort, err := freeLoopbackPort(listenAddr)
	if err != nil {
		logf("cannot find a free loopback port for the server: %v", err)
		return 1
	}
	// The gate's token is the gate's business: the server never needs it (as in stdio mode).
	serverEnv := make(map[string]string, len(env))
	for name, value := range env {
		if config.Auth == nil || name != config.Auth.TokenEnv {
			serverEnv[name] = value
		}
	}
	env = serverEnv
	env["PORT"] = fmt.Sprint(childPort)
	if _, set := env["HOST"]; !set {
		env["HOST"] = "127.0.0.1"
	}
	return supervise(config, dir, environList(env), childPort, listenAddr, gate)
}

// executableDir is the directory of the running executable, symlinks resolved.
func executableDir() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	return filepath.Dir(resolved), nil
}
