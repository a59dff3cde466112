package main

import "net/http"

// noStreamBody is the Python and Node Lambda shims' answer to a GET on the MCP path,
// byte for byte.
const noStreamBody = `{"error": "this server answers POST requests only (stateless, JSON responses)"}`

// withoutStreams answers a GET on the MCP path with 405 (Allow: POST, DELETE) instead of
// passing it on, when onLambda: a Lambda invocation through the Web Adapter's buffered mode
// cannot hold an SSE stream open (the client would wait for the function's timeout); MCP
// clients treat 405 as "no server-initiated stream" and go on with POSTs. Elsewhere (Cloud
// Run) it returns next as is.
func withoutStreams(next http.Handler, mcpPath string, onLambda bool) http.Handler {
	if !onLambda {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == mcpPath {
			w.Header().Set("Allow", "POST, DELETE")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(noStreamBody))
			return
		}
		next.ServeHTTP(w, r)
	})
}
