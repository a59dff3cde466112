package main

// The stdio bridge (StdioBridge in targets/shim/mcp_deploy_stdio.py): ONE warm stdio server
// per launcher, started (and initialized) on first use, shared by every caller, replaced by
// the next request after it died; and its environment.

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const defaultRequestTimeout = 60 * time.Second

// bridge serves MCP requests through one stdio child at a time.
type bridge struct {
	argv    []string
	dir     string
	timeout time.Duration // a forwarded request's wait for its reply, and initialize's
	ids     atomic.Int64  // bridge ids, unique for the life of the launcher

	baseEnv  map[string]string // the child's environment but HOME
	tokenEnv string
	envOnce  sync.Once
	env      []string
	tempHome string // a HOME the bridge made (removed at the end), or ""

	mutex    sync.Mutex
	child    *stdioChild // the last initialized child
	spawned  *stdioChild // the last started child (maybe still initializing)
	starting *startAttempt
	closed   bool
}

// startAttempt is one start of a child, shared by the requests that wait for it.
type startAttempt struct {
	done  chan struct{}
	child *stdioChild
	err   *bridgeError
}

// newBridge serves config.Command from dir; env is the launcher's environment with the
// secrets (the child's is made from it: see childEnvironment).
func newBridge(config *runtimeConfig, dir string, env map[string]string) *bridge {
	timeout := defaultRequestTimeout
	if config.RequestTimeout != nil {
		timeout = time.Duration(*config.RequestTimeout * float64(time.Second))
	}
	tokenEnv := ""
	if config.Auth != nil {
		tokenEnv = config.Auth.TokenEnv
	}
	return &bridge{argv: config.Command, dir: dir, timeout: timeout, baseEnv: env, tokenEnv: tokenEnv}
}

// environment is the child's environment, made once (a HOME of its own made then).
func (b *bridge) environment() []string {
	b.envOnce.Do(func() {
		env := childEnvironment(b.baseEnv, b.tokenEnv, func() string {
			home, err := os.MkdirTemp("", "mcp-deploy-home-")
			if err != nil {
				return os.TempDir()
			}
			b.mutex.Lock()
			b.tempHome = home
			b.mutex.Unlock()
			return home
		})
		b.env = environList(env)
	})
	return b.env
}

// childEnvironment is the launcher's environment (with the secrets) minus the MCP_DEPLOY_*
// variables and the gate's token (for the gate: the server never needs it);
// PYTHONUNBUFFERED=1 unless set; HOME newHome() when it is unset or not a writable
// directory (Lambda sets none; a read-only root file system has none to write).
func childEnvironment(env map[string]string, tokenEnv string, newHome func() string) map[string]string {
	result := make(map[string]string, len(env)+2)
	for name, value := range env {
		if !strings.HasPrefix(name, "MCP_DEPLOY_") && name != tokenEnv {
			result[name] = value
		}
	}
	if _, set := result["PYTHONUNBUFFERED"]; !set {
		result["PYTHONUNBUFFERED"] = "1"
	}
	if !writableDirectory(result["HOME"]) {
		result["HOME"] = newHome()
	}
	return result
}

// writableDirectory: path is a directory this process may create files in.
func writableDirectory(path string) bool {
	if path == "" {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.IsDir() && syscall.Access(path, 0x2|0x1) == nil // W_OK|X_OK
}

// ensureChild is the running, initialized child, started now if need be (concurrent callers
// share one attempt; no backoff: the next request after a failure tries again).
func (b *bridge) ensureChild(ctx context.Context) (*stdioChild, error) {
	b.mutex.Lock()
	if b.closed {
		b.mutex.Unlock()
		return nil, &bridgeError{codeServerUnavailable, "the launcher is shutting down", nil}
	}
	if b.child != nil && b.child.alive() {
		child := b.child
		b.mutex.Unlock()
		return child, nil
	}
	attempt := b.starting
	if attempt == nil {
		attempt = &startAttempt{done: make(chan struct{})}
		b.starting = attempt
		go b.start(attempt)
	}
	b.mutex.Unlock()
	select {
	case <-attempt.done:
		if attempt.err != nil {
			return nil, attempt.err
		}
		return attempt.child, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *bridge) start(attempt *startAttempt) {
	child, err := spawnStdioChild(b.argv, b.dir, b.environment(), &b.ids)
	if err == nil {
		b.mutex.Lock()
		b.spawned = child
		closed := b.closed
		b.mutex.Unlock()
		if closed { // shutting down: close() did not see it
			go child.stop(stopGrace)
		}
		err = child.initialize(b.timeout)
	}
	b.mutex.Lock()
	if err == nil {
		b.child = child
	}
	b.starting = nil
	b.mutex.Unlock()
	attempt.child, attempt.err = child, err
	close(attempt.done)
}

// liveChild is the running child, nil when there is none (nothing is started).
func (b *bridge) liveChild() *stdioChild {
	b.mutex.Lock()
	defer b.mutex.Unlock()
	if b.child != nil && b.child.alive() {
		return b.child
	}
	return nil
}

// childPid is the running child's pid, 0 when there is none (for logs and tests).
func (b *bridge) childPid() int {
	if child := b.liveChild(); child != nil {
		return child.pid
	}
	return 0
}

// close stops the child (close its stdin, SIGTERM, SIGKILL) and starts no other; returns
// the launcher's exit status: 0 when there was no running child or it ended cleanly, 1 when
// it had to be killed, else its own status.
func (b *bridge) close() int {
	b.mutex.Lock()
	b.closed = true
	child := b.spawned
	b.mutex.Unlock()
	defer b.removeTempHome()
	status := 0
	if child != nil && !child.proc.exited() {
		logf("stdio: stopping server %d", child.pid)
		killed := child.stop(stopGrace)
		switch {
		case killed:
			logf("stdio: server %d did not end after its stdin closed and SIGTERM; killed it", child.pid)
			status = 1
		case !child.proc.exited() || child.proc.endedCleanly():
		default:
			logf("stdio: server %d ended with %s", child.pid, child.proc.describe())
			status = child.proc.failureCode()
		}
	}
	return status
}

// removeTempHome removes the HOME the bridge made, if it made one.
func (b *bridge) removeTempHome() {
	b.mutex.Lock()
	home := b.tempHome
	b.mutex.Unlock()
	if home != "" {
		_ = os.RemoveAll(home)
	}
}
