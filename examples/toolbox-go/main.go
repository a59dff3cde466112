// Command toolbox-go is the toolbox MCP server on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), served over streamable HTTP.
//
// Tools (the same as the Python examples/toolbox):
//   - add(a, b): integer sum;
//   - greet(name): "{GREETING}, {name}!" (GREETING from the environment, default "Hello");
//   - word_count(text): number of whitespace-separated words;
//   - secret_fingerprint(): whether TOOLBOX_API_KEY is set, and the first 12 hex digits of
//     its SHA-256 (never the value itself), as structured content.
//
// It listens on ${HOST:-0.0.0.0}:${PORT:-8080} at /mcp, statelessly (no Mcp-Session-Id: any
// instance can answer any request) with plain JSON responses, and shuts down gracefully on
// SIGTERM or Ctrl-C. Tools and handler follow the SDK's own examples (examples/server/hello,
// examples/http, examples/server/distributed).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type addArgs struct {
	A int `json:"a" jsonschema:"the first integer"`
	B int `json:"b" jsonschema:"the second integer"`
}

type greetArgs struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

type wordCountArgs struct {
	Text string `json:"text" jsonschema:"the text whose words to count"`
}

// fingerprint is what secret_fingerprint answers; Sha256_12 only when the secret is set.
type fingerprint struct {
	Configured bool   `json:"configured"`
	Sha256_12  string `json:"sha256_12,omitempty"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func add(_ context.Context, _ *mcp.CallToolRequest, args addArgs) (*mcp.CallToolResult, any, error) {
	return text(strconv.Itoa(args.A + args.B)), nil, nil
}

func greet(_ context.Context, _ *mcp.CallToolRequest, args greetArgs) (*mcp.CallToolResult, any, error) {
	greeting, ok := os.LookupEnv("GREETING")
	if !ok {
		greeting = "Hello"
	}
	return text(greeting + ", " + args.Name + "!"), nil, nil
}

func wordCount(_ context.Context, _ *mcp.CallToolRequest, args wordCountArgs) (*mcp.CallToolResult, any, error) {
	return text(strconv.Itoa(len(strings.Fields(args.Text)))), nil, nil
}

// secretFingerprint returns a typed output: the SDK declares its output schema and sends it as
// structured content with a JSON text copy.
func secretFingerprint(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, fingerprint, error) {
	value, ok := os.LookupEnv("TOOLBOX_API_KEY")
	if !ok {
		return nil, fingerprint{Configured: false}, nil
	}
	sum := sha256.Sum256([]byte(value))
	return nil, fingerprint{Configured: true, Sha256_12: hex.EncodeToString(sum[:])[:12]}, nil
}

func newServer() *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "toolbox-go", Version: "0.1.0"},
		&mcp.ServerOptions{Instructions: "Small arithmetic and text tools."})
	mcp.AddTool(server, &mcp.Tool{Name: "add", Description: "Add two integers."}, add)
	mcp.AddTool(server, &mcp.Tool{Name: "greet", Description: "Greet someone with the configured GREETING."}, greet)
	mcp.AddTool(server, &mcp.Tool{Name: "word_count", Description: "Count the words in a text."}, wordCount)
	mcp.AddTool(server, &mcp.Tool{
		Name:        "secret_fingerprint",
		Description: "Say whether TOOLBOX_API_KEY is set, with a short SHA-256 fingerprint of it.",
	}, secretFingerprint)
	return server
}

func getenv(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok && value != "" {
		return value
	}
	return fallback
}

func main() {
	server := newServer()

	// Stateless: no Mcp-Session-Id, a temporary session per request, so requests may land on
	// different instances (Lambda, Cloud Run). JSONResponse: application/json instead of an
	// SSE stream. The SDK's DNS-rebinding protection stays on (DisableLocalhostProtection is
	// false): a request that arrives on a loopback address must carry a loopback Host, such as
	// the 127.0.0.1:<port> a local reverse proxy presents.
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server {
		return server
	}, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})

	mux := http.NewServeMux()
	mux.Handle("/mcp", handler)
	addr := net.JoinHostPort(getenv("HOST", "0.0.0.0"), getenv("PORT", "8080"))
	httpServer := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	listener, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen on %s: %v", addr, err)
	}
	log.Printf("toolbox-go listening on http://%s/mcp", listener.Addr())
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(listener) }()

	select {
	case err := <-served:
		log.Fatalf("server failed: %v", err)
	case <-ctx.Done():
	}
	stop() // a second signal stops the process at once

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("shutdown: %v", err)
	}
	log.Println("toolbox-go stopped")
}
