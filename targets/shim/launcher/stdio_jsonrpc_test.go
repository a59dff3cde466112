package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdKey(t *testing.T) {
	for raw, want := range map[string]string{
		`1`: "i1", `-3`: "i-3", `-0`: "i0", `0`: "i0", `"1"`: "s1", `"\u0061"`: "sa", `""`: "s",
		`123456789012345678901234567890`: "i123456789012345678901234567890",
	} {
		if got, ok := idKey(json.RawMessage(raw)); !ok || got != want {
			t.Errorf("idKey(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{`null`, `1.0`, `1e3`, `true`, `{}`, `[]`, `-`, ``} {
		if got, ok := idKey(json.RawMessage(raw)); ok {
			t.Errorf("idKey(%s) = %q: want no id", raw, got)
		}
	}
}

func TestAsBridgeID(t *testing.T) {
	for raw, want := range map[string]int64{`7`: 7, `7.0`: 7, `1e2`: 100} {
		if got, ok := asBridgeID(json.RawMessage(raw)); !ok || got != want {
			t.Errorf("asBridgeID(%s) = %d, %v", raw, got, ok)
		}
	}
	for _, raw := range []string{`"7"`, `7.5`, `null`, `true`, ``} {
		if _, ok := asBridgeID(json.RawMessage(raw)); ok {
			t.Errorf("asBridgeID(%s): want no bridge id", raw)
		}
	}
}

// The same cases as tests/unit/test_stdio_bridge.py's test_initialize_is_answered_from_the_cache.
func TestNegotiate(t *testing.T) {
	for _, c := range []struct{ asked, child, want string }{
		{"2025-11-25", "2025-06-18", "2025-06-18"}, // newer than the child: the child's
		{"2025-03-26", "2025-06-18", "2025-03-26"}, // an older revision: the client's
		{"2025-06-18", "2025-06-18", "2025-06-18"},
		{"1999-01-01", "2025-06-18", "2025-06-18"}, // unknown: the child's
		{"2025-03-26", "2030-01-01", "2030-01-01"}, // a child version the bridge does not know
	} {
		if got := negotiate(&c.asked, c.child); got != c.want {
			t.Errorf("negotiate(%s, %s) = %s, want %s", c.asked, c.child, got, c.want)
		}
	}
	if got := negotiate(nil, "2025-06-18"); got != "2025-06-18" {
		t.Errorf("no version asked: got %s", got)
	}
}

func TestInitializeResult(t *testing.T) {
	reply := rpcMessage{"id": rawJSON(1), "result": json.RawMessage(`{"protocolVersion":"2025-06-18","n":1.50}`)}
	result, version, err := initializeResult(reply)
	if err != nil || version != "2025-06-18" || string(result["n"]) != "1.50" {
		t.Errorf("got %v %s %v", result, version, err)
	}
	for text, complaint := range map[string]string{
		`{"id":1,"error":{"code":-1,"message":"no"}}`: `refused initialize: {"code":-1,"message":"no"}`,
		`{"id":1,"result":[]}`:                        `refused initialize: {"id":1,"result":[]}`,
		`{"id":1,"result":{"protocolVersion":5}}`:     `no protocolVersion`,
	} {
		var message rpcMessage
		_ = json.Unmarshal([]byte(text), &message)
		if _, _, err := initializeResult(message); err == nil || err.code != codeServerUnavailable ||
			!strings.Contains(err.message, complaint) {
			t.Errorf("%s: got %v", text, err)
		}
	}
}

func TestMessagesToTheServer(t *testing.T) {
	got := string(frame(cancellation(12, "timed out <here>")))
	want := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"reason":"timed out <here>","requestId":12}}` + "\n"
	if got != want {
		t.Errorf("got %s", got)
	}
	refused := string(encodeJSON(refusal(json.RawMessage(`"ask-1"`), "roots/list")))
	if !strings.Contains(refused, `"id":"ask-1"`) || !strings.Contains(refused, `-32601`) ||
		!strings.Contains(refused, "cannot forward the server-to-client request 'roots/list'") {
		t.Errorf("got %s", refused)
	}
}

func TestNotificationText(t *testing.T) {
	for _, c := range []struct{ method, params, want string }{
		{"notifications/message", `{"level":"info","logger":"raw","data":"a line"}`, "log [info] raw: a line"},
		{"notifications/message", `{"level":"error","data":{"k":[1,2]}}`, `log [error]: {"k":[1,2]}`},
		{"notifications/message", `{}`, "log [?]: null"},
		{"notifications/progress", `{"progress":1}`, `notification notifications/progress {"progress":1}`},
		{"notifications/tools/list_changed", ``, "notification notifications/tools/list_changed"},
	} {
		if got := notificationText(c.method, json.RawMessage(c.params)); got != c.want {
			t.Errorf("%s %s: got %q, want %q", c.method, c.params, got, c.want)
		}
	}
	long := strings.Repeat("é", logClip+5)
	if got := clip(long); !strings.HasSuffix(got, "… (4005 characters)") || !strings.HasPrefix(got, strings.Repeat("é", logClip)) {
		t.Errorf("clip: got %q", got[len(got)-30:])
	}
	if got := pythonRepr(`it's`); got != `"it's"` {
		t.Errorf("repr: got %s", got)
	}
	if got := shellJoin([]string{"npx", "-y", "@scope/server", "a b", "it's", ""}); got != `npx -y @scope/server 'a b' 'it'"'"'s' ''` {
		t.Errorf("shellJoin: got %s", got)
	}
}

// The HTTP refusals of tests/unit/test_stdio_bridge.py's test_http_surface_refusals_start_no_child.
func TestCheckHeaders(t *testing.T) {
	base := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json, text/event-stream"}}
	with := func(name, value string) http.Header {
		header := base.Clone()
		header.Set(name, value)
		return header
	}
	for _, c := range []struct {
		header http.Header
		status int
	}{
		{base, 0},
		{with("Content-Type", "application/json; charset=utf-8"), 0},
		{with("Accept", "*/*"), 0},
		{with("Accept", "application/*"), 0},
		{http.Header{"Content-Type": {"application/json"}}, 0}, // no Accept at all
		{with("Mcp-Protocol-Version", "2025-03-26"), 0},
		{with("Content-Type", "text/plain"), 415},
		{http.Header{}, 415},
		{with("Accept", "text/html"), 406},
		{with("Mcp-Protocol-Version", "2026-07-28"), 400},
	} {
		refused := checkHeaders(c.header)
		switch {
		case c.status == 0 && refused != nil:
			t.Errorf("%v: refused with %d", c.header, refused.status)
		case c.status != 0 && (refused == nil || refused.status != c.status):
			t.Errorf("%v: got %v, want %d", c.header, refused, c.status)
		}
	}
	refused := string(encodeJSON(checkHeaders(with("Mcp-Protocol-Version", "2026-07-28")).payload))
	for _, part := range []string{`"code":-32022`, `"supported":["2024-11-05","2025-03-26","2025-06-18","2025-11-25"]`,
		`"requested":"2026-07-28"`, `Unsupported MCP-Protocol-Version '2026-07-28'`} {
		if !strings.Contains(refused, part) {
			t.Errorf("%s lacks %s", refused, part)
		}
	}
}

// Everything a bridge answers without a server: no child is started for any of it.
func TestBodiesAnsweredWithoutAServer(t *testing.T) {
	b := newBridge(&runtimeConfig{Command: []string{"/nonexistent/server"}}, t.TempDir(), nil)
	for _, c := range []struct {
		body   string
		status int
		code   int
	}{
		{`{not json`, 400, codeParseError},
		{"\xff\xfe", 400, codeParseError},
		{`[]`, 400, codeInvalidRequest},
		{`42`, 400, codeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1}`, 400, codeInvalidRequest},
		{`{"id":1,"method":"ping"}`, 400, codeInvalidRequest},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, 400, codeInvalidRequest},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, 400, codeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, 400, codeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"ping","params":3}`, 400, codeInvalidRequest},
		{`{"jsonrpc":"2.0","id":9,"method":"server/discover"}`, 200, codeMethodNotFound},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 202, 0},
		{`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, 202, 0},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`, 202, 0},
		{`{"jsonrpc":"2.0","id":"s-1","result":{}}`, 202, 0},
		{"\xef\xbb\xbf" + `{"jsonrpc":"2.0","id":"s-1","result":{}}`, 202, 0},
		{`[{"jsonrpc":"2.0","method":"notifications/initialized"}]`, 202, 0},
	} {
		status, payload := b.handleBody(context.Background(), []byte(c.body))
		var reply struct {
			ID    json.RawMessage `json:"id"`
			Error struct{ Code int }
		}
		if payload != nil {
			_ = json.Unmarshal(encodeJSON(payload), &reply)
		}
		if status != c.status || reply.Error.Code != c.code {
			t.Errorf("%s: got %d %s", c.body, status, encodeJSON(payload))
		}
		if c.body == `{"jsonrpc":"2.0","id":9,"method":"server/discover"}` && string(reply.ID) != "9" {
			t.Errorf("discover: answered under id %s", reply.ID)
		}
	}
	status, payload := b.handleBody(context.Background(), []byte(
		`[{"nonsense":true},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"d","method":"server/discover"}]`))
	if got := string(encodeJSON(payload)); status != 200 || !strings.Contains(got, `"id":null`) || !strings.Contains(got, `"id":"d"`) {
		t.Errorf("batch: got %d %s", status, got)
	}
	if b.childPid() != 0 || b.spawned != nil {
		t.Errorf("a server was started")
	}
}

func TestChildEnvironment(t *testing.T) {
	writable := t.TempDir()
	readOnly := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(t.TempDir(), "made")
	newHome := func() string { return made }
	env := map[string]string{
		"PATH": "/bin", "API_KEY": "secret", "MCP_AUTH_TOKEN": "token", "MCP_DEPLOY_HOST": "127.0.0.1",
		"MCP_DEPLOY_SECRETS_STDIN": "1", "MCP_DEPLOYMENT": "kept", "HOME": writable,
	}
	got := childEnvironment(env, "MCP_AUTH_TOKEN", newHome)
	want := map[string]string{"PATH": "/bin", "API_KEY": "secret", "MCP_DEPLOYMENT": "kept", "HOME": writable, "PYTHONUNBUFFERED": "1"}
	if strings.Join(environList(got), " ") != strings.Join(environList(want), " ") {
		t.Errorf("got %v", got)
	}
	for _, home := range []string{"", "/nonexistent/home", filepath.Join(writable, "x"), readOnly} {
		env["HOME"] = home
		if home == "" {
			delete(env, "HOME")
		}
		if os.Geteuid() == 0 && home == readOnly {
			continue // root may write anywhere
		}
		if got := childEnvironment(env, "", newHome)["HOME"]; got != made {
			t.Errorf("HOME %q: got %q", home, got)
		}
	}
	env["PYTHONUNBUFFERED"] = ""
	if got := childEnvironment(env, "", newHome)["PYTHONUNBUFFERED"]; got != "" {
		t.Errorf("PYTHONUNBUFFERED set by the launcher: got %q", got)
	}
}

func TestParseStdioConfig(t *testing.T) {
	config, err := parseConfig([]byte(`{"transport": "stdio", "command": ["npx", "-y", "server"],
		"path": "/mcp", "auth": {"mode": "none"}, "request_timeout": 5}`))
	if err != nil || !config.stdio() || config.Command[0] != "npx" || *config.RequestTimeout != 5 {
		t.Fatalf("got %+v, %v", config, err)
	}
	for text, complaint := range map[string]string{
		`{"transport": "stdio", "auth": {"mode": "none"}}`:                                           `"command"`,
		`{"transport": "stdio", "command": [], "auth": {"mode": "none"}}`:                            `"command"`,
		`{"transport": "stdio", "command": [""], "auth": {"mode": "none"}}`:                          `empty`,
		`{"transport": "stdio", "command": [1], "auth": {"mode": "none"}}`:                           `JSON`,
		`{"transport": "stdio", "command": ["s"], "auth": {"mode": "none"}, "request_timeout": 0}`:   `request_timeout`,
		`{"transport": "stdio", "command": ["s"], "auth": {"mode": "none"}, "request_timeout": 1e9}`: `request_timeout`,
		`{"transport": "sse", "binary": "s", "auth": {"mode": "none"}}`:                              `"transport"`,
		`{"transport": "http", "binary": "s", "command": ["s"], "auth": {"mode": "none"}}`:           `keep one`,
		`{"transport": "http", "command": [""], "auth": {"mode": "none"}}`:                           `program`,
	} {
		if _, err := parseConfig([]byte(text)); err == nil || !strings.Contains(err.Error(), complaint) {
			t.Errorf("%s: got %v, want it to mention %s", text, err, complaint)
		}
	}
}
