package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testToken = "gate-token-0123456789abcdef"

func bearerGate(t *testing.T) *gate {
	t.Helper()
	health := "/health"
	g, err := newGate(&authConfig{Mode: "bearer", TokenEnv: "MCP_AUTH_TOKEN"}, "/mcp", &health,
		map[string]string{"MCP_AUTH_TOKEN": testToken}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The same cases as tests/unit/test_gate.py's test_the_gate_refuses_ambiguity_with_400.
func TestJudgeMatchesThePythonGate(t *testing.T) {
	g := bearerGate(t)
	cases := []struct {
		values []string
		status int
	}{
		{[]string{"Bearer " + testToken}, 200},
		{[]string{"bearer " + testToken}, 200},
		{[]string{"BEARER " + testToken + "  "}, 200},
		{nil, 401},
		{[]string{"Bearer wrong"}, 401},
		{[]string{"Basic " + testToken}, 401},
		{[]string{"Bearer"}, 401},
		{[]string{testToken}, 401},
		{[]string{"Bearer " + testToken + "x"}, 401},
		{[]string{"Bearer " + testToken, "Bearer wrong"}, 400},
		{[]string{"Bearer wrong", "Bearer " + testToken}, 400},
		{[]string{"Bearer " + testToken, "Bearer " + testToken}, 400},
		{[]string{"Bearer " + testToken + ",Bearer wrong"}, 400},
		{[]string{"Bearer wrong, Bearer " + testToken}, 400},
		{[]string{"Bearer " + testToken + ","}, 400},
		{[]string{"Basic a,b"}, 400},
	}
	for _, c := range cases {
		if got := g.judge("/mcp", c.values); got != c.status {
			t.Errorf("judge(%q) = %d, want %d", c.values, got, c.status)
		}
	}
}

func TestHealthPathIsOpenAndOtherModesLetEverythingThrough(t *testing.T) {
	g := bearerGate(t)
	if got := g.judge("/health", nil); got != 200 {
		t.Errorf("health path: %d", got)
	}
	if got := g.judge("/health", []string{"a", "b"}); got != 200 {
		t.Errorf("health path, two headers: %d", got)
	}
	if got := g.judge("/health/", nil); got != 401 {
		t.Errorf("only the health path itself is open: %d", got)
	}
	for _, mode := range []string{"iam", "none"} {
		open, err := newGate(&authConfig{Mode: mode, TokenEnv: "MCP_AUTH_TOKEN"}, "/mcp", nil, map[string]string{}, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if got := open.judge("/mcp", []string{"x", "y,z"}); got != 200 {
			t.Errorf("mode %s: %d", mode, got)
		}
	}
}

func TestBearerModeFailsClosed(t *testing.T) {
	for _, env := range []map[string]string{{}, {"MCP_AUTH_TOKEN": ""}, {"MCP_AUTH_TOKEN": "a,b"}} {
		_, err := newGate(&authConfig{Mode: "bearer", TokenEnv: "MCP_AUTH_TOKEN"}, "/mcp", nil, env, "", false)
		if err == nil {
			t.Fatalf("no error for %v", env)
		}
		if !strings.Contains(err.Error(), "MCP_AUTH_TOKEN") || strings.Contains(err.Error(), "a,b") {
			t.Errorf("the error names the variable, never the value: %v", err)
		}
	}
}

func TestRefusalsAreThePythonGates(t *testing.T) {
	g := bearerGate(t)
	handler := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a refused request reached the server")
	}))
	want := map[int][3]string{
		401: {`Bearer realm="mcp"`, `{"error": "unauthorized", "hint": "send Authorization: Bearer <token>"}`},
		400: {`Bearer realm="mcp", error="invalid_request"`,
			`{"error": "invalid_request", "hint": "send exactly one Authorization header, with one bearer token"}`},
	}
	for status, headers := range map[int][]string{401: {"Bearer nope"}, 400: {"Bearer a", "Bearer b"}} {
		req := httptest.NewRequest("POST", "/mcp", nil)
		for _, value := range headers {
			req.Header.Add("Authorization", value)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != status || rec.Header().Get("Content-Type") != "application/json" ||
			rec.Header().Get("WWW-Authenticate") != want[status][0] || rec.Body.String() != want[status][1] {
			t.Errorf("%d: got %d %v %q", status, rec.Code, rec.Header(), rec.Body.String())
		}
	}
}
