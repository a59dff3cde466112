package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	readyPoll    = 5 * time.Millisecond
	readyTimeout = 60 * time.Second
)

// child is the server process. done is closed once it has been reaped; status then holds
// its wait status.
type child struct {
	process *os.Process
	done    chan struct{}
	status  syscall.WaitStatus
}

// startChild starts the server: argv (argv[0] the resolved program), cwd dir, environment
// env, stdin /dev/null, stdout/stderr the launcher's; it gets SIGKILL if the launcher dies. A
// reaper collects it (and, when the launcher is PID 1, every orphan re-parented to it).
func startChild(argv []string, dir string, env []string) (*child, error) {
	cmd := &exec.Cmd{
		Path:        argv[0],
		Args:        argv,
		Dir:         dir,
		Env:         env,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{process: cmd.Process, done: make(chan struct{})}
	go c.reap(os.Getpid() == 1)
	return c, nil
}

// reap waits for the child (not through exec.Cmd.Wait: as PID 1 the launcher also waits for
// any orphan, and the two would race for the child's status).
func (c *child) reap(orphansToo bool) {
	pid := c.process.Pid
	for {
		wanted := pid
		if orphansToo {
			wanted = -1
		}
		var status syscall.WaitStatus
		got, err := syscall.Wait4(wanted, &status, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: nothing (more) to wait for
			select {
			case <-c.done:
			default:
				c.status = syscall.WaitStatus(0xff << 8) // unknown: report exit status 255
				close(c.done)
			}
			return
		}
		if got == pid {
			c.status = status
			close(c.done)
			if !orphansToo {
				return
			}
		}
	}
}

// exited reports whether the child has been reaped.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the child unless it has been reaped already (through the process
// handle: a pidfd where the kernel has them, so never to a reused pid).
func (c *child) signal(sig syscall.Signal) {
	if !c.exited() {
		_ = c.process.Signal(sig)
	}
}

// describe says how the child ended, e.g. "exit status 3" or "killed by signal terminated".
func (c *child) describe() string {
	if c.status.Signaled() {
		return "killed by signal " + c.status.Signal().String()
	}
	return "exit status " + strconv.Itoa(c.status.ExitStatus())
}

// exitCode is the launcher's exit status for a child that ended this way: its exit status,
// or 128+n for signal n.
func (c *child) exitCode() int {
	if c.status.Signaled() {
		return 128 + int(c.status.Signal())
	}
	return c.status.ExitStatus()
}

// endedCleanly: after our SIGTERM, exit status 0, killed by that SIGTERM, or exit status 143
// (128+SIGTERM, how many runtimes report it).
func (c *child) endedCleanly() bool {
	if c.status.Signaled() {
		return c.status.Signal() == syscall.SIGTERM
	}
	return c.status.ExitStatus() == 0 || c.status.ExitStatus() == 128+int(syscall.SIGTERM)
}

// failureCode is the exit status for a child that ended when it should not have: its own
// status, but never 0.
func (c *child) failureCode() int {
	if code := c.exitCode(); code != 0 {
		return code
	}
	return 1
}

// waitReady polls until 127.0.0.1:port accepts a TCP connection. It returns nil when it
// does, errChildExited when the child ends first, errStopped when stop is closed first, and
// a timeout error after readyTimeout.
func (c *child) waitReady(port int, stop <-chan struct{}) error {
	address := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyTimeout)
	ticker := time.NewTicker(readyPoll)
	defer ticker.Stop()
	for {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not listen on %s within %s", address, readyTimeout)
		}
		select {
		case <-c.done:
			return errChildExited
		case <-stop:
			return errStopped
		case <-ticker.C:
		}
	}
}

var (
	errChildExited = errors.New("the server exited")
	errStopped     = errors.New("stopped by a signal")
)

// serverArgv is the server's command line: the executable "binary" names (relative to dir),
// or "command" with its program resolved as a stdio command's is (resolveProgram).
func serverArgv(dir string, config *runtimeConfig) ([]string, error) {
	if len(config.Command) == 0 {
		return []string{filepath.Join(dir, filepath.FromSlash(config.Binary))}, nil
	}
	program, err := resolveProgram(config.Command[0], dir)
	if err != nil {
		return nil, err
	}
	return append([]string{program}, config.Command[1:]...), nil
}

// serverName is how the log names the server: "binary", or the command line.
func serverName(config *runtimeConfig) string {
	if len(config.Command) == 0 {
		return config.Binary
	}
	return strings.Join(config.Command, " ")
}
