package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// authConfig is the "auth" object of the runtime config (orchestrator/build/auth_config.py).
// The oauth keys are read in mode "oauth" only; allowed_origins in every mode.
type authConfig struct {
	Mode           string   `json:"mode"`
	TokenEnv       string   `json:"token_env"`
	Issuer         string   `json:"issuer"`
	Audience       *string  `json:"audience"`
	Scopes         []string `json:"scopes"`
	Algorithms     []string `json:"algorithms"`
	JWKSURI        *string  `json:"jwks_uri"`
	AudienceClaim  string   `json:"audience_claim"`
	ScopeClaim     string   `json:"scope_claim"`
	AllowedOrigins []string `json:"allowed_origins"`
}

// runtimeConfig is what the launcher reads from mcp_deploy_runtime.json (written at build
// time; it holds no environment config and no secret values). Unknown keys are ignored.
type runtimeConfig struct {
	Binary     string      `json:"binary"`
	Path       string      `json:"path"`
	HealthPath *string     `json:"health_path"`
	Auth       *authConfig `json:"auth"`
	Secrets    []string    `json:"secrets"`
	// Transport "stdio": the launcher serves MCP itself, bridging to Command (see stdio_*.go).
	Transport      string   `json:"transport"`
	Command        []string `json:"command"`
	RequestTimeout *float64 `json:"request_timeout"`
}

// stdio reports whether the config asks for the stdio bridge instead of the proxy.
func (c *runtimeConfig) stdio() bool {
	return c.Transport == "stdio"
}

// loadConfig reads and checks the runtime config at path. Every error names the file.
func loadConfig(path string) (*runtimeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the runtime config %s: %w", path, err)
	}
	config, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("invalid runtime config %s: %w", path, err)
	}
	return config, nil
}

// parseConfig decodes one JSON object and checks the keys the launcher relies on.
func parseConfig(data []byte) (*runtimeConfig, error) {
	var config runtimeConfig
	decoder := json.NewDecoder(bytes.NewReader(data))
	if err := decoder.Decode(&config); err != nil {
		return nil, fmt.Errorf("not a JSON object of the expected shape: %w", err)
	}
	if decoder.More() {
		return nil, errors.New("more than one JSON value")
	}
	switch config.Transport {
	case "", "http": // the proxy: "command" is not read
	case "stdio":
		if err := checkStdioConfig(&config); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf(`"transport" must be "http" or "stdio", not %q`, config.Transport)
	}
	switch {
	case config.Binary == "" && !config.stdio() && len(config.Command) == 0:
		return nil, errors.New(`"binary" (the server executable) or "command" is missing or empty`)
	case config.Binary != "" && len(config.Command) > 0:
		return nil, errors.New(`"binary" and "command" both name the server: keep one`)
	case len(config.Command) > 0 && config.Command[0] == "":
		return nil, errors.New(`the first element of "command" (the program) is empty`)
	case filepath.IsAbs(config.Binary):
		return nil, errors.New(`"binary" must be relative to the launcher's directory`)
	case config.Auth == nil:
		return nil, errors.New(`"auth" is missing`)
	case config.HealthPath != nil && !strings.HasPrefix(*config.HealthPath, "/"):
		return nil, errors.New(`"health_path" must be null or a path starting with "/"`)
	}
	switch config.Auth.Mode {
	case "bearer":
		if config.Auth.TokenEnv == "" {
			return nil, errors.New(`auth mode "bearer" needs "auth.token_env"`)
		}
	case "iam", "none":
	case "oauth":
		if err := checkOAuthConfig(config.Auth); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf(`"auth.mode" must be "bearer", "iam", "none" or "oauth", not %q`, config.Auth.Mode)
	}
	for _, origin := range config.Auth.AllowedOrigins {
		if origin == "" {
			return nil, errors.New(`"auth.allowed_origins" holds an empty string`)
		}
	}
	return &config, nil
}

// checkStdioConfig checks the keys of the stdio mode: a non-empty "command" whose first
// element is not empty, and a sensible "request_timeout" when there is one.
func checkStdioConfig(config *runtimeConfig) error {
	switch {
	case len(config.Command) == 0:
		return errors.New(`"transport": "stdio" needs "command", a non-empty list of strings`)
	case config.Command[0] == "":
		return errors.New(`the first element of "command" (the program) is empty`)
	case config.RequestTimeout != nil && !(*config.RequestTimeout > 0 && *config.RequestTimeout <= 86400):
		return errors.New(`"request_timeout" must be a number of seconds, more than 0 and at most 86400`)
	}
	return nil
}

// environMap turns KEY=VALUE entries into a map (a later duplicate wins, as in getenv).
func environMap(entries []string) map[string]string {
	env := make(map[string]string, len(entries))
	for _, entry := range entries {
		if name, value, ok := strings.Cut(entry, "="); ok && name != "" {
			env[name] = value
		}
	}
	return env
}

// environList turns a map back into KEY=VALUE entries, sorted by name.
func environList(env map[string]string) []string {
	entries := make([]string, 0, len(env))
	for name, value := range env {
		entries = append(entries, name+"="+value)
	}
	sort.Strings(entries)
	return entries
}

// listenAddress is where the launcher serves: port $AWS_LWA_PORT, else $PORT, else 8080, on
// $MCP_DEPLOY_HOST, else 127.0.0.1 under Lambda (AWS_LAMBDA_RUNTIME_API set), else 0.0.0.0.
func listenAddress(getenv func(string) string) string {
	port := getenv("AWS_LWA_PORT")
	if port == "" {
		port = getenv("PORT")
	}
	if port == "" {
		port = "8080"
	}
	host := getenv("MCP_DEPLOY_HOST")
	if host == "" {
		if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
			host = "127.0.0.1"
		} else {
			host = "0.0.0.0"
		}
	}
	return net.JoinHostPort(host, port)
}

// freeLoopbackPort is a port nothing listens on on 127.0.0.1 right now, other than the
// port of avoid (the launcher's own listening address, bound later).
func freeLoopbackPort(avoid string) (int, error) {
	_, avoidPort, _ := net.SplitHostPort(avoid)
	for attempt := 0; attempt < 10; attempt++ {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := listener.Addr().(*net.TCPAddr).Port
		listener.Close()
		if strconv.Itoa(port) != avoidPort {
			return port, nil
		}
	}
	return 0, errors.New("the kernel keeps offering the launcher's own port")
}
