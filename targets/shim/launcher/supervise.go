package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownGrace bounds the wait for in-flight requests and the server after SIGTERM
// (Cloud Run sends SIGKILL 10 s after SIGTERM).
const shutdownGrace = 8 * time.Second

// supervise starts the server, waits until it listens on childPort, then serves the gated
// proxy on listenAddr until a signal or the server's end. Returns the exit status.
func supervise(config *runtimeConfig, dir string, env []string, childPort int, listenAddr string, g *gate) int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	stop := make(chan struct{})
	go func() {
		<-signals
		close(stop)
	}()

	name := serverName(config)
	argv, err := serverArgv(dir, config)
	if err != nil {
		logf("cannot start the server %s: %v", name, err)
		return 1
	}
	server, err := startChild(argv, dir, env)
	if err != nil {
		logf("cannot start the server %s: %v", name, err)
		return 1
	}
	switch err := server.waitReady(childPort, stop); {
	case errors.Is(err, errChildExited):
		logf("the server %s exited before it listened on 127.0.0.1:%d (%s)", name, childPort, server.describe())
		return server.failureCode()
	case errors.Is(err, errStopped):
		return stopServer(server, nil)
	case err != nil:
		logf("%v; stopping it", err)
		stopServer(server, nil)
		return 1
	}

	listener, err := net.Listen("tcp", listenAddr)
	if err != nil {
		logf("cannot listen on %s: %v", listenAddr, err)
		stopServer(server, nil)
		return 1
	}
	front := &http.Server{
		Handler:           g.wrap(withoutStreams(newProxy(childPort), config.Path, os.Getenv("AWS_LAMBDA_RUNTIME_API") != "")),
		ReadHeaderTimeout: 60 * time.Second,
		ErrorLog:          log.New(os.Stderr, programName+": http: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- front.Serve(listener) }()
	health := "none"
	if config.HealthPath != nil {
		health = *config.HealthPath
	}
	logf("serving on %s (auth %s, MCP path %s, health path %s); the server %s listens on 127.0.0.1:%d",
		listenAddr, config.Auth.Mode, config.Path, health, name, childPort)

	select {
	case <-server.done:
		logf("the server %s ended on its own (%s)", name, server.describe())
		front.Close()
		return server.failureCode()
	case err := <-served:
		logf("serving on %s failed: %v", listenAddr, err)
		stopServer(server, nil)
		return 1
	case <-stop:
		return stopServer(server, front)
	}
}

// stopServer ends everything within shutdownGrace: the front server (when not nil) stops
// accepting and finishes in-flight requests while the server gets SIGTERM; whatever is left
// at the deadline is closed, and the server is killed. Returns 0 when the server ended
// cleanly (see child.endedCleanly), else its status (1 when it had to be killed).
func stopServer(server *child, front *http.Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	server.signal(syscall.SIGTERM)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if front != nil {
			if front.Shutdown(ctx) != nil {
				front.Close()
			}
		}
	}()
	killed := false
	select {
	case <-server.done:
	case <-ctx.Done():
		logf("the server did not end within %s of SIGTERM; killing it", shutdownGrace)
		server.signal(syscall.SIGKILL)
		<-server.done
		killed = true
	}
	<-drained
	switch {
	case killed:
		return 1
	case server.endedCleanly():
		return 0
	default:
		logf("the server ended with %s", server.describe())
		return server.failureCode()
	}
}
