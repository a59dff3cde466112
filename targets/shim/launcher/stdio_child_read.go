package main

// Reading a stdio server: its stdout (replies matched to requests by id, server requests
// answered, notifications logged), its stderr (to the launcher's, line by line, prefixed
// with its pid) and its exit (requests in flight fail with -32000).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// readStdout reads one message a line until stdout closes; the child is no use after that
// even if it still runs, and is stopped.
func (c *stdioChild) readStdout() {
	defer close(c.readerDone)
	reader := bufio.NewReaderSize(c.stdout, 64<<10)
	for {
		line, err := readLine(reader, lineLimit)
		if err == errLineTooLong { // framing is lost
			logf("stdio: server %d wrote a line over %d bytes; stopping it", c.pid, lineLimit)
			break
		}
		if len(line) > 0 {
			c.onLine(line)
		}
		if err != nil {
			break
		}
	}
	c.dead.Store(true)
	if !c.proc.exited() {
		go c.stop(stopGrace)
	}
}

// readLine is the next line (with its newline; without at the end of the stream), or
// errLineTooLong when it is longer than limit.
func readLine(reader *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := reader.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

func (c *stdioChild) onLine(line []byte) {
	text := strings.TrimSpace(strings.ToValidUTF8(string(line), "\uFFFD"))
	if text == "" {
		return
	}
	var parsed json.RawMessage
	if json.Unmarshal([]byte(text), &parsed) != nil {
		logf("stdio: server %d wrote a non-JSON line on stdout: %s", c.pid, clip(text))
		return
	}
	values := []json.RawMessage{parsed}
	if firstByte(parsed) == '[' {
		_ = json.Unmarshal(parsed, &values)
	}
	for _, value := range values {
		var message rpcMessage
		if firstByte(value) == '{' && json.Unmarshal(value, &message) == nil {
			c.onMessage(message)
		} else {
			logf("stdio: server %d wrote a non-JSON-RPC value: %s", c.pid, clip(text))
		}
	}
}

func (c *stdioChild) onMessage(message rpcMessage) {
	id, hasID := message["id"]
	noID := !hasID || isNull(id)
	if method, ok := asString(message["method"]); ok {
		if noID {
			logf("stdio: server %d %s", c.pid, notificationText(method, message["params"]))
		} else {
			c.answerServerRequest(method, id)
		}
		return
	}
	_, hasResult := message["result"]
	_, hasError := message["error"]
	if !hasResult && !hasError {
		logf("stdio: server %d wrote an unexpected message: %s", c.pid, clip(string(encodeJSON(message))))
		return
	}
	if bridgeID, ok := asBridgeID(id); ok && !noID {
		c.mutex.Lock()
		pending := c.pending[bridgeID]
		delete(c.pending, bridgeID)
		c.mutex.Unlock()
		if pending != nil {
			pending.done <- outcome{reply: message}
			return
		}
	}
	if noID {
		logf("stdio: server %d reported an error: %s", c.pid, clip(string(encodeJSON(message))))
	} else {
		logf("stdio: server %d answered request %s, which no longer waits", c.pid, idText(id))
	}
}

// answerServerRequest: ping is answered; other server-to-client requests (sampling, roots,
// elicitation) cannot reach a caller over stateless HTTP and get -32601, so the server
// carries on.
func (c *stdioChild) answerServerRequest(method string, id json.RawMessage) {
	if method == "ping" {
		c.sendSoon(rpcMessage{"jsonrpc": rawJSON("2.0"), "id": id, "result": rawJSON(map[string]any{})})
		return
	}
	logf("stdio: server %d sent a %s request; answered with an error (unsupported)", c.pid, method)
	c.sendSoon(refusal(id, method))
}

// copyStderr copies the child's stderr to the launcher's, each line prefixed with its pid
// (a line longer than the buffer comes out in pieces).
func (c *stdioChild) copyStderr() {
	defer close(c.stderrDone)
	reader := bufio.NewReaderSize(c.stderr, 64<<10)
	for {
		chunk, err := reader.ReadSlice('\n')
		if len(chunk) > 0 {
			text := strings.TrimRight(strings.ToValidUTF8(string(chunk), "\uFFFD"), "\r\n")
			fmt.Fprintf(os.Stderr, "[mcp-server %d] %s\n", c.pid, text)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// watch waits for the child's end, lets the reader take replies still in the pipe, kills
// what is left of its process group, fails the requests in flight and closes the pipes.
func (c *stdioChild) watch() {
	<-c.proc.done
	c.dead.Store(true)
	waitFor(c.readerDone, time.Second)
	signalGroup(c.pid, syscall.SIGKILL) // leftovers: grandchildren holding the pipes
	_ = c.stdin.Close()
	c.mutex.Lock()
	c.finished = true
	inFlight := c.pending
	c.pending = map[int64]*pendingRequest{}
	c.mutex.Unlock()
	words := c.proc.exitWords()
	note := ""
	if len(inFlight) > 0 {
		note = fmt.Sprintf("; %d requests in flight get an error", len(inFlight))
	}
	logf("stdio: server %d %s%s", c.pid, words, note)
	for _, pending := range inFlight {
		pending.done <- outcome{err: &bridgeError{codeServerUnavailable, fmt.Sprintf("the MCP "+
			"server process %s before answering; the next request starts a new one", words),
			map[string]any{"exitCode": c.proc.returnCode()}}}
	}
	close(c.gone)
	// A grandchild that left the process group may still hold the pipes: do not wait for it.
	waitFor(c.readerDone, time.Second)
	waitFor(c.stderrDone, time.Second)
	_ = c.stdout.Close()
	_ = c.stderr.Close()
}
