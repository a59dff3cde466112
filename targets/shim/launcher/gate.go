package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The refusals of targets/shim/mcp_deploy_gate.py (REFUSALS), byte for byte: the bodies are
// Python's json.dumps output, so keep the spaces after ':' and ','.
var refusals = map[int]struct {
	challenge string
	body      string
}{
	http.StatusBadRequest: {
		`Bearer realm="mcp", error="invalid_request"`,
		`{"error": "invalid_request", "hint": "send exactly one Authorization header, with one bearer token"}`,
	},
	http.StatusUnauthorized: {
		`Bearer realm="mcp"`,
		`{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}`,
	},
}

// gate decides who may call the server, per the spec's auth mode (see the package doc), and
// checks the Origin of every request (any mode).
type gate struct {
	mode       string
	healthPath *string
	token      []byte
	front      *front
	oauth      *oauthGate // mode "oauth" only
}

// newGate builds the gate of auth for a server whose MCP path is mcpPath. The bearer token
// (mode "bearer") is env[auth.token_env]: an empty or missing token, or one with a comma (no
// bearer token has one, RFC 6750), is an error: fail closed. The error names the variable,
// never its value. publicURL is MCP_DEPLOY_PUBLIC_URL ("" when unset); onLambda says the
// launcher runs behind the Lambda Web Adapter.
func newGate(auth *authConfig, mcpPath string, healthPath *string, env map[string]string,
	publicURL string, onLambda bool) (*gate, error) {
	f, err := newFront(publicURL, onLambda, auth.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	g := &gate{mode: auth.Mode, healthPath: healthPath, front: f}
	switch auth.Mode {
	case "oauth":
		if err := checkOAuthConfig(auth); err != nil {
			return nil, err
		}
		if mcpPath == "" {
			mcpPath = "/mcp"
		}
		g.oauth = newOAuthGate(auth, mcpPath)
	case "bearer":
		tokenEnv := auth.TokenEnv
		g.token = []byte(env[tokenEnv])
		if len(g.token) == 0 {
			return nil, fmt.Errorf("auth.mode is 'bearer' but the token secret %s is empty or not set", tokenEnv)
		}
		if strings.Contains(env[tokenEnv], ",") {
			return nil, errors.New("the token secret " + tokenEnv + " contains a comma, which a " +
				"bearer token cannot (RFC 6750): choose one of letters, digits and -._~+/=")
		}
	}
	return g, nil
}

// pythonSpace is what Python's str.strip() removes from an ASCII string.
const pythonSpace = " \t\n\v\f\r\x1c\x1d\x1e\x1f"

// judge returns 200 to let a request through, 400 for ambiguous credentials (more than one
// Authorization value, or one with a comma), else 401 unless the one value is
// "Bearer <the token>" (scheme case-insensitive). authorization: every Authorization value
// of the request, as delivered.
func (g *gate) judge(path string, authorization []string) int {
	if g.mode != "bearer" || (g.healthPath != nil && path == *g.healthPath) {
		return http.StatusOK
	}
	value := ""
	if len(authorization) > 0 {
		value = authorization[0]
	}
	scheme, presented, _ := strings.Cut(value, " ")
	presented = strings.Trim(presented, pythonSpace)
	matches := subtle.ConstantTimeCompare([]byte(presented), g.token) == 1
	if len(authorization) > 1 || strings.Contains(value, ",") {
		return http.StatusBadRequest
	}
	if strings.ToLower(scheme) == "bearer" && matches {
		return http.StatusOK
	}
	return http.StatusUnauthorized
}

// wrap applies the gate in front of next, in the contract's order: the health path is always
// open; in mode "oauth" the metadata URLs are answered here; a foreign Origin is refused
// (403); then the auth mode decides. A request let through reaches next as a loopback one
// (presentAsLoopback).
func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := g.front.base(r)
		if g.healthPath == nil || r.URL.Path != *g.healthPath {
			if g.oauth != nil && g.oauth.isMetadataPath(r.URL.Path) {
				g.oauth.serveMetadata(w, r, base)
				return
			}
			if !g.front.originAllowed(r.Header.Values("Origin"), base) {
				writeRefusal(w, http.StatusForbidden, "", forbiddenOriginBody)
				return
			}
			if g.oauth != nil {
				if !g.oauth.authorize(w, r, base) {
					return
				}
			} else if status := g.judge(r.URL.Path, r.Header.Values("Authorization")); status != http.StatusOK {
				refusal := refusals[status]
				writeRefusal(w, status, refusal.challenge, refusal.body)
				return
			}
		}
		presentAsLoopback(r)
		next.ServeHTTP(w, r)
	})
}
