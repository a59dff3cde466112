package main

// The stdio mode's HTTP surface (StdioBridge.__call__ in targets/shim/mcp_deploy_stdio.py):
// MCP streamable HTTP, stateless, JSON responses. The health path answers {"status": "ok"};
// the MCP path takes POSTs of JSON-RPC; everything else is refused as the Python bridge
// refuses it.

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody is the largest request body served (413 above).
const maxBody = 16 << 20

// stdioHandler serves the bridge on path (and path + "/").
type stdioHandler struct {
	bridge     *bridge
	path       string
	healthPath *string
}

func newStdioHandler(b *bridge, path string, healthPath *string) *stdioHandler {
	path = "/" + strings.Trim(path, "/")
	return &stdioHandler{bridge: b, path: path, healthPath: healthPath}
}

// httpRefusal is an answer given before the body is read.
type httpRefusal struct {
	status  int
	payload any
	headers map[string]string
}

func (h *stdioHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if h.healthPath != nil && path == *h.healthPath {
		respond(w, http.StatusOK, map[string]string{"status": "ok"}, nil)
		return
	}
	if path != h.path && path != strings.TrimRight(h.path, "/")+"/" {
		respond(w, http.StatusNotFound, map[string]string{"error": "not found", "mcp_path": h.path}, nil)
		return
	}
	if r.Method != http.MethodPost {
		refusal := rpcError(nil, codeInvalidRequest, "Method Not Allowed: POST JSON-RPC messages", nil)
		respond(w, http.StatusMethodNotAllowed, refusal, map[string]string{"Allow": "POST"})
		return
	}
	if refused := checkHeaders(r.Header); refused != nil {
		respond(w, refused.status, refused.payload, refused.headers)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil { // the client went away, or sent a broken body
		respond(w, http.StatusBadRequest, rpcError(nil, codeParseError, "Parse error: the body could not be read", nil), nil)
		return
	}
	if len(body) > maxBody {
		respond(w, http.StatusRequestEntityTooLarge, rpcError(nil, codeInvalidRequest, "the body is too large", nil), nil)
		return
	}
	status, payload := h.bridge.handleBody(r.Context(), body)
	respond(w, status, payload, nil)
}

// checkHeaders is the refusal of a POST whose headers are not acceptable, or nil: a content
// type other than JSON (415), an Accept header without JSON (406), an MCP-Protocol-Version
// this bridge does not speak (400, -32022). The Origin was checked, and removed, by the gate.
func checkHeaders(header http.Header) *httpRefusal {
	if !hasMediaType(strings.Join(header.Values("Content-Type"), ","), "application/json") {
		return &httpRefusal{http.StatusUnsupportedMediaType,
			rpcError(nil, codeInvalidRequest, "Unsupported Media Type: send application/json", nil), nil}
	}
	accept := strings.Join(header.Values("Accept"), ",")
	if accept != "" && !hasMediaType(accept, "application/json", "application/*", "*/*") {
		return &httpRefusal{http.StatusNotAcceptable,
			rpcError(nil, codeInvalidRequest, "Not Acceptable: accept application/json", nil), nil}
	}
	if version := header.Values("Mcp-Protocol-Version"); len(version) > 0 && versionIndex(version[0]) < 0 {
		data := map[string]any{"supported": handshakeVersions, "requested": version[0]}
		message := fmt.Sprintf("Unsupported MCP-Protocol-Version %s: this server speaks the "+
			"initialize handshake", pythonRepr(version[0]))
		return &httpRefusal{http.StatusBadRequest, rpcError(nil, codeUnsupportedVersion, message, data), nil}
	}
	return nil
}

// hasMediaType: the comma-separated list of media types (parameters ignored) holds one of
// wanted.
func hasMediaType(value string, wanted ...string) bool {
	for _, part := range strings.Split(value, ",") {
		media, _, _ := strings.Cut(part, ";")
		media = strings.ToLower(strings.TrimSpace(media))
		for _, want := range wanted {
			if media == want {
				return true
			}
		}
	}
	return false
}

// respond writes status with payload as JSON (nil: no body).
func respond(w http.ResponseWriter, status int, payload any, headers map[string]string) {
	var body []byte
	if payload != nil {
		body = encodeJSON(payload)
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	for name, value := range headers {
		w.Header().Set(name, value)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
