package main

// The stdio mode's life: listen at once (the server starts with the first request), serve
// the gated bridge until SIGTERM/SIGINT, then finish in-flight requests and stop the server.

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// serveStdio serves MCP on listenAddr through the gate g, bridging to config.Command (started
// in dir with env, see childEnvironment). Returns the exit status.
func serveStdio(config *runtimeConfig, dir string, env map[string]string, listenAddr string, g *gate) int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	if _, err := resolveProgram(config.Command[0], dir); err != nil {
		logf("warning: the stdio server's program %s cannot be started (%s); each request will try again",
			config.Command[0], startFailure(err))
	}
	b := newBridge(config, dir, env)
	listener, err := net.Listen("tcp", listenAddr)
	if err != nil {
		logf("cannot listen on %s: %v", listenAddr, err)
		return 1
	}
	path := config.Path
	if path == "" {
		path = "/mcp"
	}
	handler := newStdioHandler(b, path, config.HealthPath)
	front := &http.Server{
		Handler:           g.wrap(handler),
		ReadHeaderTimeout: 60 * time.Second,
		ErrorLog:          log.New(os.Stderr, programName+": http: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- front.Serve(listener) }()
	health := "none"
	if config.HealthPath != nil {
		health = *config.HealthPath
	}
	logf("serving on %s (auth %s, MCP path %s, health path %s); the stdio server %s starts with the first request",
		listenAddr, config.Auth.Mode, handler.path, health, shellJoin(config.Command))

	select {
	case err := <-served:
		logf("serving on %s failed: %v", listenAddr, err)
		b.close()
		return 1
	case <-signals:
	}
	// In-flight requests need the server: let them finish first, within what the platform
	// allows after SIGTERM (shutdownGrace) minus the server's own stop (two stopGraces).
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace-2*stopGrace)
	defer cancel()
	if front.Shutdown(ctx) != nil {
		front.Close()
	}
	return b.close()
}
