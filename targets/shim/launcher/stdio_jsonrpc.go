package main

// The stdio bridge's JSON-RPC vocabulary, as targets/shim/mcp_deploy_stdio_jsonrpc.py has
// it: handshake versions, error codes, message shapes, ids, version negotiation and how a
// server notification is logged. Messages are kept as maps of raw JSON values, so whatever
// a caller or the server wrote (numbers, nested objects) passes through untouched.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// handshakeVersions are the protocol revisions reached through the initialize handshake,
// oldest to newest; the bridge asks the server for the newest.
var handshakeVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

// JSON-RPC error codes.
const (
	codeParseError         = -32700
	codeInvalidRequest     = -32600
	codeMethodNotFound     = -32601
	codeInternalError      = -32603
	codeServerUnavailable  = -32000 // the MCP SDKs' CONNECTION_CLOSED
	codeRequestTimeout     = -32001 // the MCP SDKs' REQUEST_TIMEOUT
	codeUnsupportedVersion = -32022
	codeRequestCancelled   = -32800
)

// logClip is how many characters of a message a log line shows.
const logClip = 4000

// rpcMessage is one JSON-RPC message: member name -> raw JSON value.
type rpcMessage map[string]json.RawMessage

// bridgeError is a request the server could not answer: it becomes a JSON-RPC error.
type bridgeError struct {
	code    int
	message string
	data    any
}

func (e *bridgeError) Error() string { return e.message }

// errNotDelivered: the message could not be written to the server (it is gone).
var errNotDelivered = errors.New("the message could not be written to the MCP server")

// encodeJSON is v as compact JSON, without HTML escaping (as Python's json.dumps writes).
func encodeJSON(v any) []byte {
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(v); err != nil {
		// Only raw values that did not come from a JSON parser could do this: a bug.
		panic(fmt.Sprintf("cannot encode a JSON-RPC message: %v", err))
	}
	return bytes.TrimRight(buffer.Bytes(), "\n")
}

// rawJSON is v as a raw JSON value.
func rawJSON(v any) json.RawMessage {
	return json.RawMessage(encodeJSON(v))
}

// frame is one stdio frame: compact JSON (newlines inside strings are escaped) and a newline.
func frame(message rpcMessage) []byte {
	return append(encodeJSON(message), '\n')
}

// firstByte is the first byte of a raw value after white space (0 when there is none).
func firstByte(raw json.RawMessage) byte {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return 0
	}
	return trimmed[0]
}

// isNull: the member is JSON null (a missing member is nil, not null).
func isNull(raw json.RawMessage) bool {
	return raw != nil && string(bytes.TrimSpace(raw)) == "null"
}

// asString decodes a JSON string member.
func asString(raw json.RawMessage) (string, bool) {
	if firstByte(raw) != '"' {
		return "", false
	}
	var text string
	if json.Unmarshal(raw, &text) != nil {
		return "", false
	}
	return text, true
}

// idKey is a JSON-RPC request id's identity, or false when raw is no valid id (a string or
// an integer: not null, a fraction, a boolean). Ids are the same when their keys are: "1"
// and 1 differ, "\u0061" and "a" do not.
func idKey(raw json.RawMessage) (string, bool) {
	if text, ok := asString(raw); ok {
		return "s" + text, true
	}
	digits := string(bytes.TrimSpace(raw))
	number := strings.TrimPrefix(digits, "-")
	if number == "" || strings.Trim(number, "0123456789") != "" {
		return "", false
	}
	if digits == "-0" {
		digits = "0"
	}
	return "i" + digits, true
}

// asBridgeID reads an id as one of the bridge's integer ids; a sloppy server's 1.0 is 1.
func asBridgeID(raw json.RawMessage) (int64, bool) {
	text := string(bytes.TrimSpace(raw))
	if id, err := strconv.ParseInt(text, 10, 64); err == nil {
		return id, true
	}
	if firstByte(raw) == '"' {
		return 0, false
	}
	value, err := strconv.ParseFloat(text, 64)
	if err != nil || value != math.Trunc(value) || math.Abs(value) > 1<<53 {
		return 0, false
	}
	return int64(value), true
}

// idText is an id for a log line.
func idText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return string(encodeJSON(raw))
}

// rpcError is a JSON-RPC error answer (id nil: null).
func rpcError(id json.RawMessage, code int, message string, data any) rpcMessage {
	if id == nil {
		id = json.RawMessage("null")
	}
	body := map[string]any{"code": code, "message": message}
	if data != nil {
		body["data"] = data
	}
	return rpcMessage{"jsonrpc": rawJSON("2.0"), "id": id, "error": rawJSON(body)}
}

// errorReply is err as the JSON-RPC answer to request id.
func errorReply(id json.RawMessage, err *bridgeError) rpcMessage {
	return rpcError(id, err.code, err.message, err.data)
}

// cancellation is the notifications/cancelled the bridge sends for its request bridgeID.
func cancellation(bridgeID int64, reason string) rpcMessage {
	params := map[string]any{"requestId": bridgeID, "reason": reason}
	return rpcMessage{
		"jsonrpc": rawJSON("2.0"),
		"method":  rawJSON("notifications/cancelled"),
		"params":  rawJSON(params),
	}
}

// negotiate is the version a client's initialize is answered with: the client's when the
// child speaks it (its own version, or an older known handshake version), else the child's.
func negotiate(requested *string, childVersion string) string {
	if requested == nil {
		return childVersion
	}
	if *requested == childVersion {
		return childVersion
	}
	asked, child := versionIndex(*requested), versionIndex(childVersion)
	if asked >= 0 && child >= 0 && asked < child {
		return *requested
	}
	return childVersion
}

func versionIndex(version string) int {
	for i, known := range handshakeVersions {
		if known == version {
			return i
		}
	}
	return -1
}

// initializeRequest is the bridge's own initialize, for the newest handshake version.
func initializeRequest() rpcMessage {
	params := map[string]any{
		"protocolVersion": handshakeVersions[len(handshakeVersions)-1],
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]string{"name": "mcp-deploy-stdio-bridge", "version": "1"},
	}
	return rpcMessage{
		"jsonrpc": rawJSON("2.0"),
		"method":  rawJSON("initialize"),
		"params":  rawJSON(params),
	}
}

// initializeResult is the InitializeResult in the server's reply to the bridge's initialize,
// and its protocolVersion.
func initializeResult(reply rpcMessage) (rpcMessage, string, *bridgeError) {
	var result rpcMessage
	_, failed := reply["error"]
	if failed || firstByte(reply["result"]) != '{' || json.Unmarshal(reply["result"], &result) != nil {
		shown := json.RawMessage(encodeJSON(reply))
		if failed {
			shown = reply["error"]
		}
		return nil, "", &bridgeError{codeServerUnavailable,
			"the MCP server refused initialize: " + clip(string(encodeJSON(shown))), nil}
	}
	version, ok := asString(result["protocolVersion"])
	if !ok {
		return nil, "", &bridgeError{codeServerUnavailable,
			"the MCP server's InitializeResult has no protocolVersion", nil}
	}
	return result, version, nil
}

// refusal answers a server-to-client request the bridge cannot forward to a caller.
func refusal(id json.RawMessage, method string) rpcMessage {
	return rpcError(id, codeMethodNotFound, fmt.Sprintf("the mcp-deploy stdio bridge serves "+
		"stateless HTTP and cannot forward the server-to-client request %s to a client",
		pythonRepr(method)), nil)
}

// notificationText is a server notification as the log shows it (a log message: its
// level, logger and data).
func notificationText(method string, params json.RawMessage) string {
	var fields rpcMessage
	if method == "notifications/message" && firstByte(params) == '{' && json.Unmarshal(params, &fields) == nil {
		logger := ""
		if truthy(fields["logger"]) {
			logger = " " + plainText(fields["logger"])
		}
		level := "?"
		if raw, ok := fields["level"]; ok {
			level = plainText(raw)
		}
		return fmt.Sprintf("log [%s]%s: %s", level, logger, clip(plainText(fields["data"])))
	}
	rendered := ""
	if len(params) > 0 {
		rendered = string(encodeJSON(params))
	}
	return strings.TrimRight(fmt.Sprintf("notification %s %s", method, clip(rendered)), " ")
}

// plainText is a string value itself, anything else as JSON.
func plainText(raw json.RawMessage) string {
	if text, ok := asString(raw); ok {
		return text
	}
	if len(raw) == 0 {
		return "null"
	}
	return string(encodeJSON(raw))
}

// truthy is Python's truth value of a JSON value (missing counts as false).
func truthy(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", "0", `""`, "[]", "{}":
		return false
	}
	value, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	return err != nil || value != 0
}

// clip shortens text to logClip characters, saying how long it was.
func clip(text string) string {
	if utf8.RuneCountInString(text) <= logClip {
		return text
	}
	runes := []rune(text)
	return fmt.Sprintf("%s… (%d characters)", string(runes[:logClip]), len(runes))
}

// pythonRepr quotes text as Python's repr() does for a plain string.
func pythonRepr(text string) string {
	text = strings.ReplaceAll(text, `\`, `\\`)
	if strings.Contains(text, "'") && !strings.Contains(text, `"`) {
		return `"` + text + `"`
	}
	return "'" + strings.ReplaceAll(text, "'", `\'`) + "'"
}
