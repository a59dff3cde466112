package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as a stdio MCP server (like tests/support/stdio_servers.py raw):
// it answers concurrently and out of order, records cancellations, asks its client for
// sampling, and crashes on request.
const fakeServerVariable = "LAUNCHER_TEST_STDIO_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeServerVariable) == "1" {
		fakeServer()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeServer() {
	var mutex sync.Mutex
	write := func(message map[string]any) {
		data, _ := json.Marshal(message)
		mutex.Lock()
		defer mutex.Unlock()
		os.Stdout.Write(append(data, '\n'))
	}
	var cancelled []any
	answers := map[string]chan map[string]any{}
	fmt.Fprintf(os.Stderr, "fake server %d ready\n", os.Getpid())
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		var message map[string]any
		if json.Unmarshal(scanner.Bytes(), &message) != nil {
			continue
		}
		id, method := message["id"], message["method"]
		params, _ := message["params"].(map[string]any)
		switch method {
		case nil:
			mutex.Lock()
			answer := answers[fmt.Sprint(id)]
			mutex.Unlock()
			if answer != nil {
				answer <- message
			}
		case "initialize":
			version := os.Getenv("FAKE_VERSION")
			if version == "" {
				version = "2025-06-18"
			}
			write(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
				"protocolVersion": version, "capabilities": map[string]any{},
				"serverInfo": map[string]any{"name": "fake", "version": "1"}}})
		case "notifications/cancelled":
			mutex.Lock()
			cancelled = append(cancelled, params["requestId"])
			mutex.Unlock()
		case "echo":
			go func() {
				delay, _ := params["delay_ms"].(float64)
				time.Sleep(time.Duration(delay) * time.Millisecond)
				write(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
					"value": params["value"], "id": id, "pid": os.Getpid()}})
			}()
		case "seen":
			mutex.Lock()
			seen := append([]any{}, cancelled...)
			mutex.Unlock()
			write(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{"cancelled": seen}})
		case "ask":
			answer := make(chan map[string]any, 1)
			mutex.Lock()
			answers["ask-1"] = answer
			mutex.Unlock()
			write(map[string]any{"jsonrpc": "2.0", "id": "ask-1", "method": "sampling/createMessage"})
			go func() {
				write(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{"answer": <-answer}})
			}()
		case "crash":
			os.Exit(7)
		}
		// "sleep" and the rest: never answered
	}
}

func fakeBridge(t *testing.T, timeout float64, extra ...string) *bridge {
	t.Helper()
	env := map[string]string{fakeServerVariable: "1", "HOME": t.TempDir(), "PATH": os.Getenv("PATH")}
	for _, pair := range extra {
		name, value, _ := strings.Cut(pair, "=")
		env[name] = value
	}
	config := &runtimeConfig{Command: []string{os.Args[0]}, RequestTimeout: &timeout}
	b := newBridge(config, t.TempDir(), env)
	t.Cleanup(func() { b.close() })
	return b
}

type answer struct {
	ID     json.RawMessage
	Result map[string]any
	Error  struct {
		Code    int
		Message string
		Data    map[string]any
	}
}

func call(t *testing.T, b *bridge, body string) answer {
	t.Helper()
	status, payload := b.handleBody(context.Background(), []byte(body))
	var reply answer
	if status != 200 || json.Unmarshal(encodeJSON(payload), &reply) != nil {
		t.Fatalf("%s: got %d %s", body, status, encodeJSON(payload))
	}
	return reply
}

func echo(id string, value, delay int) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"echo","params":{"value":%d,"delay_ms":%d}}`, id, value, delay)
}

func TestConcurrentCallersWithTheSameIdShareOneChild(t *testing.T) {
	b := fakeBridge(t, 10, "FAKE_VERSION=2025-06-18")
	replies := make([]answer, 10)
	var group sync.WaitGroup
	for n := range replies {
		group.Add(1)
		go func(n int) {
			defer group.Done()
			replies[n] = call(t, b, echo("1", n, (10-n)*20)) // later ones answer first
		}(n)
	}
	group.Wait()
	bridgeIDs, pids := map[any]bool{}, map[any]bool{}
	for n, reply := range replies {
		if string(reply.ID) != "1" || reply.Result["value"] != float64(n) {
			t.Errorf("caller %d got %s %v", n, reply.ID, reply.Result)
		}
		bridgeIDs[reply.Result["id"]] = true
		pids[reply.Result["pid"]] = true
	}
	if len(bridgeIDs) != 10 || len(pids) != 1 || pids[float64(b.childPid())] != true {
		t.Errorf("bridge ids %v, pids %v, child %d", bridgeIDs, pids, b.childPid())
	}
	for asked, answered := range map[string]string{"2025-11-25": "2025-06-18", "2025-03-26": "2025-03-26"} {
		reply := call(t, b, `{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"`+asked+`"}}`)
		if reply.Result["protocolVersion"] != answered || string(reply.ID) != `"i"` {
			t.Errorf("initialize %s: got %v", asked, reply.Result)
		}
	}
	batch := fmt.Sprintf(`[%s,%s,{"jsonrpc":"2.0","method":"notifications/initialized"}]`, echo(`"a"`, 1, 50), echo(`"b"`, 2, 0))
	status, payload := b.handleBody(context.Background(), []byte(batch))
	if got := string(encodeJSON(payload)); status != 200 || !strings.Contains(got, `"id":"a"`) || !strings.Contains(got, `"id":"b"`) {
		t.Errorf("batch: %d %s", status, got)
	}
}

func TestACrashFailsTheRequestsInFlightAndTheNextRequestRestarts(t *testing.T) {
	b := fakeBridge(t, 10)
	first := call(t, b, echo("1", 0, 0)).Result["pid"]
	sleeping := make(chan answer)
	go func() { sleeping <- call(t, b, `{"jsonrpc":"2.0","id":2,"method":"sleep"}`) }()
	time.Sleep(100 * time.Millisecond)
	for _, reply := range []answer{call(t, b, `{"jsonrpc":"2.0","id":3,"method":"crash"}`), <-sleeping} {
		if reply.Error.Code != codeServerUnavailable || !strings.Contains(reply.Error.Message, "exited with code 7") ||
			reply.Error.Data["exitCode"] != float64(7) {
			t.Errorf("got %+v", reply.Error)
		}
	}
	if b.childPid() != 0 {
		t.Errorf("a dead child is still the bridge's")
	}
	if second := call(t, b, echo("4", 0, 0)).Result["pid"]; second == first || second == nil {
		t.Errorf("pids %v then %v", first, second)
	}
}

func TestATimeoutCancelsTheRequestAndKeepsTheChild(t *testing.T) {
	b := fakeBridge(t, 0.3)
	pid := call(t, b, echo("1", 0, 0)).Result["pid"]
	started := time.Now()
	slow := call(t, b, `{"jsonrpc":"2.0","id":2,"method":"sleep"}`)
	if slow.Error.Code != codeRequestTimeout || time.Since(started) > 2*time.Second || string(slow.ID) != "2" {
		t.Errorf("got %s %+v", slow.ID, slow.Error)
	}
	if again := call(t, b, echo("3", 0, 0)).Result["pid"]; again != pid {
		t.Errorf("pids %v then %v", pid, again)
	}
	seen := call(t, b, `{"jsonrpc":"2.0","id":4,"method":"seen"}`).Result["cancelled"].([]any)
	if len(seen) != 1 || seen[0] != float64(3) { // bridge ids: initialize 1, echo 2, sleep 3
		t.Errorf("the child saw cancellations of %v", seen)
	}
}

func TestAClientCancellationReachesTheRightRequest(t *testing.T) {
	b := fakeBridge(t, 10)
	call(t, b, echo("1", 0, 0))
	mine := make(chan answer)
	go func() { mine <- call(t, b, `{"jsonrpc":"2.0","id":"mine","method":"sleep"}`) }()
	theirs := make(chan answer)
	go func() { theirs <- call(t, b, echo(`"theirs"`, 1, 300)) }()
	child := b.liveChild()
	for inFlight := 0; inFlight < 2; time.Sleep(10 * time.Millisecond) {
		child.mutex.Lock()
		inFlight = len(child.pending)
		child.mutex.Unlock()
	}
	for _, id := range []string{`"nobody"`, `"mine"`} {
		status, _ := b.handleBody(context.Background(), []byte(
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+id+`,"reason":"no"}}`))
		if status != 202 {
			t.Errorf("cancel %s: %d", id, status)
		}
	}
	if reply := <-mine; reply.Error.Code != codeRequestCancelled || string(reply.ID) != `"mine"` {
		t.Errorf("got %+v", reply)
	}
	if reply := <-theirs; reply.Result["value"] != float64(1) {
		t.Errorf("the other caller got %+v", reply)
	}
	seen := call(t, b, `{"jsonrpc":"2.0","id":3,"method":"seen"}`).Result["cancelled"].([]any)
	if len(seen) != 1 || (seen[0] != float64(3) && seen[0] != float64(4)) { // "mine", under its bridge id
		t.Errorf("the child saw cancellations of %v", seen)
	}
	refused := call(t, b, `{"jsonrpc":"2.0","id":5,"method":"ask"}`).Result["answer"].(map[string]any)
	if refused["id"] != "ask-1" || !strings.Contains(fmt.Sprint(refused["error"]), "-32601") {
		t.Errorf("the server's request was answered with %v", refused)
	}
}

func TestAProgramThatCannotStart(t *testing.T) {
	timeout := 1.0
	missing := newBridge(&runtimeConfig{Command: []string{"/nonexistent/mcp-server"}, RequestTimeout: &timeout}, t.TempDir(), nil)
	t.Cleanup(func() { missing.close() })
	reply := call(t, missing, echo("1", 0, 0))
	if reply.Error.Code != codeServerUnavailable ||
		!strings.Contains(reply.Error.Message, "could not start the MCP server process (mcp-server): No such file or directory") {
		t.Errorf("got %+v", reply.Error)
	}
	home := missing.tempHome // there was no HOME in its environment: it made one
	if info, err := os.Stat(home); err != nil || !info.IsDir() {
		t.Errorf("no HOME of its own: %q", home)
	}
	missing.close()
	if _, err := os.Stat(home); err == nil {
		t.Errorf("its HOME %s outlived it", home)
	}
	unknown := newBridge(&runtimeConfig{Command: []string{"no-such-mcp-server-anywhere"}, RequestTimeout: &timeout}, t.TempDir(), nil)
	t.Cleanup(func() { unknown.close() })
	if reply := call(t, unknown, echo("1", 0, 0)); !strings.Contains(reply.Error.Message, "not found") {
		t.Errorf("got %+v", reply.Error)
	}
}
