package main

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	config, err := parseConfig([]byte(`{"binary": "bin/server", "path": "/mcp", "health_path": null,
		"auth": {"mode": "bearer", "token_env": "MCP_AUTH_TOKEN"}, "secrets": ["MCP_AUTH_TOKEN"],
		"runtime": "binary", "future": {"key": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if config.Binary != "bin/server" || config.HealthPath != nil || config.Auth.TokenEnv != "MCP_AUTH_TOKEN" {
		t.Errorf("got %+v", config)
	}
	for text, complaint := range map[string]string{
		`{"auth": {"mode": "none"}}`:                                   `"binary"`,
		`{"binary": "/abs", "auth": {"mode": "none"}}`:                 `relative`,
		`{"binary": "s"}`:                                              `"auth"`,
		`{"binary": "s", "auth": {"mode": "bearer"}}`:                  `token_env`,
		`{"binary": "s", "auth": {"mode": "open"}}`:                    `"auth.mode"`,
		`{"binary": "s", "health_path": "h", "auth": {"mode": "iam"}}`: `"health_path"`,
		`[1]`:           `JSON`,
		`{"binary": 3}`: `JSON`,
	} {
		if _, err := parseConfig([]byte(text)); err == nil || !strings.Contains(err.Error(), complaint) {
			t.Errorf("%s: got %v, want it to mention %s", text, err, complaint)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "0.0.0.0:8080"},
		{map[string]string{"PORT": "9000"}, "0.0.0.0:9000"},
		{map[string]string{"PORT": "9000", "AWS_LWA_PORT": "8081", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, "127.0.0.1:8081"},
		{map[string]string{"MCP_DEPLOY_HOST": "127.0.0.1", "PORT": "7"}, "127.0.0.1:7"},
	} {
		if got := listenAddress(func(key string) string { return c.env[key] }); got != c.want {
			t.Errorf("%v: got %s, want %s", c.env, got, c.want)
		}
	}
}

func TestEnvironRoundTrip(t *testing.T) {
	env := environMap([]string{"A=1", "B=x=y", "A=2", "=bad", "C="})
	if env["A"] != "2" || env["B"] != "x=y" || env["C"] != "" || len(env) != 3 {
		t.Errorf("got %v", env)
	}
	if got := strings.Join(environList(env), " "); got != "A=2 B=x=y C=" {
		t.Errorf("got %s", got)
	}
}
