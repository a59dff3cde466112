package main

// One stdio MCP server process behind the bridge (targets/shim/mcp_deploy_stdio_child.py):
// starting it and its initialize handshake, writing to it, reading its stdout and matching
// replies to requests by id, answering its server-to-client requests, logging its
// notifications and stderr, noticing its exit (the requests in flight then fail) and
// stopping it. Which child serves a request, and when a new one starts, is the bridge's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
)

const (
	lineLimit = 64 << 20        // the longest line read from the server (one message)
	stopGrace = 2 * time.Second // after its stdin closes, and again after SIGTERM
)

var errLineTooLong = errors.New("a line over the limit")

// outcome is what a request in flight gets: the server's reply or an error.
type outcome struct {
	reply rpcMessage
	err   error
}

type pendingRequest struct {
	done      chan outcome // buffered: whoever removes the request from pending sends once
	clientKey string       // idKey of the caller's id ("" for the bridge's own requests)
}

// stdioChild is one running stdio server: its pipes, the requests in flight, the goroutines
// reading it.
type stdioChild struct {
	proc   *child
	pid    int
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	ids    *atomic.Int64 // the bridge's: ids unique for the life of the launcher

	writeMutex sync.Mutex // held while writing
	queueMutex sync.Mutex
	queue      []queuedFrame // frames to write, in order
	dead       atomic.Bool

	mutex    sync.Mutex
	pending  map[int64]*pendingRequest
	finished bool // the exit was noticed: nothing more can be answered

	initResult      rpcMessage
	protocolVersion string

	readerDone chan struct{}
	stderrDone chan struct{}
	gone       chan struct{} // the exit is recorded and the requests in flight failed
}

// spawnStdioChild starts argv in dir with env: stdin/stdout/stderr pipes, a session (and
// process group) of its own, SIGKILL when the launcher dies.
func spawnStdioChild(argv []string, dir string, env []string, ids *atomic.Int64) (*stdioChild, *bridgeError) {
	path, err := resolveProgram(argv[0], dir)
	var pipes [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	for i := 0; err == nil && i < 3; i++ {
		pipes[2*i], pipes[2*i+1], err = os.Pipe()
	}
	var proc *child
	if err == nil {
		proc, err = startProcess(path, argv, &os.ProcAttr{
			Dir:   dir,
			Env:   env,
			Files: []*os.File{pipes[0], pipes[3], pipes[5]},
			Sys:   &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL},
		})
	}
	for _, i := range []int{0, 3, 5} { // the child's ends
		if pipes[i] != nil {
			pipes[i].Close()
		}
	}
	if err != nil {
		for _, i := range []int{1, 2, 4} {
			if pipes[i] != nil {
				pipes[i].Close()
			}
		}
		reason := startFailure(err)
		logf("stdio: could not start %s: %s", shellJoin(argv), reason)
		return nil, &bridgeError{codeServerUnavailable, fmt.Sprintf("could not start the MCP "+
			"server process (%s): %s; the next request tries again", filepath.Base(argv[0]), reason), nil}
	}
	c := &stdioChild{
		proc: proc, pid: proc.process.Pid, stdin: pipes[1], stdout: pipes[2], stderr: pipes[4], ids: ids,
		pending:    map[int64]*pendingRequest{},
		readerDone: make(chan struct{}), stderrDone: make(chan struct{}), gone: make(chan struct{}),
	}
	go c.readStdout()
	go c.copyStderr()
	go c.watch()
	logf("stdio: started server %d: %s (cwd %s)", c.pid, shellJoin(argv), dir)
	return c, nil
}

// startFailure is why a program could not start, as strerror says it.
func startFailure(err error) string {
	var errno syscall.Errno
	var lookup *exec.Error
	switch {
	case errors.As(err, &errno):
		text := []rune(errno.Error())
		text[0] = unicode.ToUpper(text[0])
		return string(text)
	case errors.As(err, &lookup):
		return lookup.Err.Error()
	}
	return err.Error()
}

// initialize does the handshake (initialize, then notifications/initialized) within
// timeout, or fails with a -32000 error saying why; the child is stopped then.
func (c *stdioChild) initialize(timeout time.Duration) *bridgeError {
	reply, err := c.request(context.Background(), initializeRequest(), "", timeout)
	if err == nil {
		result, version, refused := initializeResult(reply)
		if refused != nil {
			err = refused
		} else if err = c.send(frame(rpcMessage{"jsonrpc": rawJSON("2.0"),
			"method": rawJSON("notifications/initialized")})); err == nil {
			c.initResult, c.protocolVersion = result, version
			name, release := "?", ""
			var info rpcMessage
			if json.Unmarshal(result["serverInfo"], &info) == nil {
				if raw, ok := info["name"]; ok {
					name = plainText(raw)
				}
				if raw, ok := info["version"]; ok {
					release = plainText(raw)
				}
			}
			logf("stdio: server %d initialized: %s %s (protocol %s)", c.pid, name, release, version)
			return nil
		}
	}
	if c.dead.Load() || errors.Is(err, errNotDelivered) {
		c.waitGone(stopGrace)
		words, code := c.exitState()
		return &bridgeError{codeServerUnavailable, fmt.Sprintf("the MCP server process %s during "+
			"start-up, before answering initialize (its stderr is in the log); the next request "+
			"tries again", words), map[string]any{"exitCode": code}}
	}
	go c.stop(stopGrace)
	var failure *bridgeError
	if !errors.As(err, &failure) {
		failure = &bridgeError{codeServerUnavailable, err.Error(), nil}
	}
	if failure.code == codeRequestTimeout {
		return &bridgeError{codeServerUnavailable, fmt.Sprintf(
			"the MCP server did not answer initialize within %s s", seconds(timeout)), nil}
	}
	logf("stdio: %s", failure.message)
	return failure
}

// exitState is how the child ended (words and Python's returncode), or "closed its output"
// and nil while its exit is not recorded.
func (c *stdioChild) exitState() (string, any) {
	select {
	case <-c.gone:
		return c.proc.exitWords(), c.proc.returnCode()
	default:
		return "closed its output", nil
	}
}

// alive: not known to be dead (exited, stdout closed, a failed write, being stopped).
func (c *stdioChild) alive() bool {
	return !c.dead.Load() && !c.proc.exited()
}

// --- writing ---

// queuedFrame is a frame waiting to be written, and where its outcome goes (nil: nowhere).
type queuedFrame struct {
	line   []byte
	result chan error
}

// enqueue queues a frame; the caller holds queueMutex. Frames are written in this order.
func (c *stdioChild) enqueue(line []byte, result chan error) {
	c.queue = append(c.queue, queuedFrame{line, result})
}

// flush writes the queued frames, each one's outcome to its result: errNotDelivered once the
// child is gone (a failed write, EPIPE: nobody reads its stdin).
func (c *stdioChild) flush() {
	c.writeMutex.Lock()
	defer c.writeMutex.Unlock()
	c.queueMutex.Lock()
	frames := c.queue
	c.queue = nil
	c.queueMutex.Unlock()
	for _, queued := range frames {
		err := errNotDelivered
		if !c.dead.Load() {
			if _, failed := c.stdin.Write(queued.line); failed != nil {
				c.dead.Store(true)
			} else {
				err = nil
			}
		}
		if queued.result != nil {
			queued.result <- err
		}
	}
}

// send writes one frame (after those queued before it); errNotDelivered when the child is
// gone.
func (c *stdioChild) send(line []byte) error {
	result := make(chan error, 1)
	c.queueMutex.Lock()
	c.enqueue(line, result)
	c.queueMutex.Unlock()
	c.flush()
	return <-result
}

// sendSoon writes a message in the background (best effort), yet before anything sent after
// it, as Python's transport buffer keeps the order.
func (c *stdioChild) sendSoon(message rpcMessage) {
	c.queueMutex.Lock()
	c.enqueue(frame(message), nil)
	c.queueMutex.Unlock()
	go c.flush()
}

// request sends message under a new bridge id and returns the child's reply (with the
// bridge id): errNotDelivered when it could not be written, a bridgeError on timeout (the
// child is sent notifications/cancelled), the context's error when the caller went away.
func (c *stdioChild) request(ctx context.Context, message rpcMessage, clientKey string, timeout time.Duration) (rpcMessage, error) {
	bridgeID := c.ids.Add(1)
	pending := &pendingRequest{done: make(chan outcome, 1), clientKey: clientKey}
	method, _ := asString(message["method"])
	message["id"] = rawJSON(bridgeID)
	line := frame(message)
	written := make(chan error, 1)
	// In flight and queued at once: a cancellation of it can only be queued after it.
	c.queueMutex.Lock()
	c.mutex.Lock()
	finished := c.finished
	if !finished {
		c.pending[bridgeID] = pending
	}
	c.mutex.Unlock()
	if !finished {
		c.enqueue(line, written)
	}
	c.queueMutex.Unlock()
	if finished {
		return nil, errNotDelivered
	}
	defer func() {
		c.mutex.Lock()
		delete(c.pending, bridgeID)
		c.mutex.Unlock()
	}()
	go c.flush() // in the background: a child that does not read its stdin meets the timer
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		var replied chan outcome
		if written == nil { // only once it is written: a write error wins over an exit
			replied = pending.done
		}
		select {
		case err := <-written:
			if err != nil {
				return nil, err
			}
			written = nil
		case result := <-replied:
			return result.reply, result.err
		case <-timer.C:
			if len(pending.done) > 0 { // answered just now
				result := <-pending.done
				return result.reply, result.err
			}
			c.sendSoon(cancellation(bridgeID, "timed out in the stdio bridge"))
			logf("stdio: request %d (%s) timed out after %s s", bridgeID, method, seconds(timeout))
			return nil, &bridgeError{codeRequestTimeout, fmt.Sprintf("the MCP server did not "+
				"answer within %s s; the request was cancelled (the server keeps running)",
				seconds(timeout)), nil}
		case <-ctx.Done():
			if len(pending.done) == 0 {
				c.sendSoon(cancellation(bridgeID, "the HTTP request was abandoned"))
			}
			return nil, ctx.Err()
		}
	}
}

// cancel forwards a caller's cancellation of its request (clientKey; id as the caller wrote
// it) when exactly one request in flight carries that id, and answers that request at once.
func (c *stdioChild) cancel(clientKey string, id json.RawMessage, params rpcMessage) {
	c.mutex.Lock()
	var matches []int64
	for bridgeID, pending := range c.pending {
		if pending.clientKey == clientKey {
			matches = append(matches, bridgeID)
		}
	}
	if len(matches) != 1 {
		c.mutex.Unlock()
		count := "no"
		if len(matches) > 0 {
			count = strconv.Itoa(len(matches))
		}
		logf("stdio: cancellation of request %s dropped: %s requests in flight carry that id", idText(id), count)
		return
	}
	pending := c.pending[matches[0]]
	delete(c.pending, matches[0])
	c.mutex.Unlock()
	forwarded := make(rpcMessage, len(params))
	for name, value := range params {
		forwarded[name] = value
	}
	forwarded["requestId"] = rawJSON(matches[0])
	c.sendSoon(rpcMessage{"jsonrpc": rawJSON("2.0"), "method": rawJSON("notifications/cancelled"),
		"params": rawJSON(forwarded)})
	pending.done <- outcome{err: &bridgeError{codeRequestCancelled, "the request was cancelled by the client", nil}}
}

// --- stopping ---

// stop ends the child as the MCP stdio transport says: close its stdin, then SIGTERM (to its
// process group), then SIGKILL, grace apart. Whether it had to be killed.
func (c *stdioChild) stop(grace time.Duration) bool {
	c.dead.Store(true)
	_ = c.stdin.Close()
	killed := false
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if waitFor(c.proc.done, grace) {
			break
		}
		signalGroup(c.pid, sig)
		c.proc.signal(sig)
		killed = sig == syscall.SIGKILL
	}
	c.waitGone(grace)
	return killed
}

// waitGone waits (at most timeout) until the exit is recorded and requests in flight failed.
func (c *stdioChild) waitGone(timeout time.Duration) {
	waitFor(c.gone, timeout)
}

// waitFor reports whether done closes within timeout.
func waitFor(done <-chan struct{}, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// seconds is a duration as Python's f"{seconds:g}" writes it.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
}

// shellJoin quotes argv as Python's shlex.join does.
func shellJoin(argv []string) string {
	quoted := make([]string, len(argv))
	for i, arg := range argv {
		safe := arg != "" && strings.Trim(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == ""
		if safe {
			quoted[i] = arg
		} else {
			quoted[i] = "'" + strings.ReplaceAll(arg, "'", `'"'"'`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
