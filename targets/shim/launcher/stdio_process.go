package main

// Processes of the stdio mode: starting them, and one reaper for all of them. The stdio mode
// starts a new server whenever the last one died, so (unlike the proxy mode's single child)
// each child cannot wait for itself with wait4(-1) when the launcher is PID 1: the reaper
// waits for any child, hands each status to the child it belongs to and drops orphans'.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// processReaper reaps every child of the launcher (the stdio mode's servers, and orphans
// re-parented to it when it is PID 1).
type processReaper struct {
	mutex   sync.Mutex
	waiting map[int]*child
	kick    chan struct{} // a child was started: there is something to wait for again
}

var (
	reaper     = &processReaper{waiting: map[int]*child{}, kick: make(chan struct{}, 1)}
	reaperOnce sync.Once
)

// startProcess starts path with argv, registered with the reaper before anything can reap
// it: done is closed and status set once it has ended.
func startProcess(path string, argv []string, attr *os.ProcAttr) (*child, error) {
	reaperOnce.Do(func() { go reaper.run() })
	reaper.mutex.Lock()
	defer reaper.mutex.Unlock()
	process, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return nil, err
	}
	c := &child{process: process, done: make(chan struct{})}
	reaper.waiting[process.Pid] = c
	select {
	case reaper.kick <- struct{}{}:
	default:
	}
	return c, nil
}

func (r *processReaper) run() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: no child now; wait until one starts
			<-r.kick
			continue
		}
		// startProcess holds the mutex from the fork to the registration: a child reaped
		// this early is registered by the time the mutex is ours.
		r.mutex.Lock()
		c, ours := r.waiting[pid]
		delete(r.waiting, pid)
		r.mutex.Unlock()
		if ours {
			c.status = status
			close(c.done) // (its pidfd, if any, is closed by os.Process's cleanup)
		}
	}
}

// resolveProgram is the executable of a stdio command: name itself when absolute, relative
// to dir when it contains a slash, else looked up on PATH; an error when it is missing or
// not executable.
func resolveProgram(name, dir string) (string, error) {
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(dir, filepath.FromSlash(name))
	}
	return exec.LookPath(name)
}

// signalGroup signals the process group led by pid (a server leads its own: npx-style
// wrappers' children get the signal too).
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}

// signalNames are Python's names of the signals a server is likely to die of.
var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
	syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
	syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGSYS: "SIGSYS",
}

// returnCode is the child's status as Python's returncode: the exit status, or -n when
// signal n killed it.
func (c *child) returnCode() int {
	if c.status.Signaled() {
		return -int(c.status.Signal())
	}
	return c.status.ExitStatus()
}

// exitWords says how the child ended, as the Python bridge says it.
func (c *child) exitWords() string {
	if !c.status.Signaled() {
		return "exited with code " + strconv.Itoa(c.status.ExitStatus())
	}
	name, known := signalNames[c.status.Signal()]
	if !known {
		name = "signal " + strconv.Itoa(int(c.status.Signal()))
	}
	return "was killed by " + name
}
