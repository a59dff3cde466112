package main

// What the stdio bridge does with each message a caller posts (JsonRpcEndpoint in
// targets/shim/mcp_deploy_stdio_jsonrpc.py): parse and check the body (a batch element by
// element, concurrently), answer initialize from the server's cached InitializeResult with
// the negotiated version, answer server/discover "method not found", forward other requests
// under bridge ids (retried once on a new server when the old one never got them) and
// forward notifications (a client's cancellation mapped to the bridge id).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"
)

// handleBody is the HTTP status and JSON payload (nil: none) for a POSTed body.
func (b *bridge) handleBody(ctx context.Context, body []byte) (int, any) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var parsed json.RawMessage
	if !utf8.Valid(body) {
		return 400, rpcError(nil, codeParseError, "Parse error: the body is not JSON (it is not UTF-8)", nil)
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return 400, rpcError(nil, codeParseError, fmt.Sprintf("Parse error: the body is not JSON (%v)", err), nil)
	}
	if firstByte(parsed) == '[' {
		var batch []json.RawMessage
		_ = json.Unmarshal(parsed, &batch) // valid JSON, and an array
		if len(batch) == 0 {
			return 400, rpcError(nil, codeInvalidRequest, "Invalid request: an empty batch", nil)
		}
		replies := make([]rpcMessage, len(batch))
		var group sync.WaitGroup
		for i, message := range batch {
			group.Add(1)
			go func(i int, message json.RawMessage) {
				defer group.Done()
				replies[i], _ = b.handleMessage(ctx, message)
			}(i, message)
		}
		group.Wait()
		answered := make([]rpcMessage, 0, len(replies))
		for _, reply := range replies {
			if reply != nil {
				answered = append(answered, reply)
			}
		}
		if len(answered) == 0 {
			return 202, nil
		}
		return 200, answered
	}
	reply, valid := b.handleMessage(ctx, parsed)
	switch {
	case !valid:
		return 400, reply
	case reply == nil:
		return 202, nil
	}
	return 200, reply
}

// handleMessage is the reply to one message (nil: none) and whether it was valid JSON-RPC.
func (b *bridge) handleMessage(ctx context.Context, raw json.RawMessage) (reply rpcMessage, valid bool) {
	var message rpcMessage
	if firstByte(raw) != '{' || json.Unmarshal(raw, &message) != nil {
		return rpcError(nil, codeInvalidRequest, "Invalid request: not a JSON-RPC 2.0 message", nil), false
	}
	if version, ok := asString(message["jsonrpc"]); !ok || version != "2.0" {
		return rpcError(nil, codeInvalidRequest, "Invalid request: not a JSON-RPC 2.0 message", nil), false
	}
	methodRaw := message["method"]
	_, hasResult := message["result"]
	_, hasError := message["error"]
	if (methodRaw == nil || isNull(methodRaw)) && (hasResult || hasError) {
		return nil, true // a response from the client: nothing asked for one
	}
	method, ok := asString(methodRaw)
	if !ok {
		return rpcError(nil, codeInvalidRequest, "Invalid request: no method", nil), false
	}
	id, hasID := message["id"]
	if !hasID {
		b.notification(method, message)
		return nil, true
	}
	if _, ok := idKey(id); !ok {
		return rpcError(nil, codeInvalidRequest, "Invalid request: bad id", nil), false
	}
	if params, ok := message["params"]; ok && firstByte(params) != '{' && firstByte(params) != '[' {
		return rpcError(id, codeInvalidRequest, "Invalid request: bad params", nil), false
	}
	defer func() { // a bug here must not hang or drop the caller
		if failure := recover(); failure != nil {
			logf("stdio: request %s (%s) failed in the bridge: %v", idText(id), method, failure)
			reply, valid = rpcError(id, codeInternalError, "Internal error in the stdio bridge", nil), true
		}
	}()
	answer, err := b.request(ctx, method, id, message)
	var failure *bridgeError
	switch {
	case errors.As(err, &failure):
		return errorReply(id, failure), true
	case err != nil: // the caller went away: nobody reads this
		return rpcError(id, codeServerUnavailable, "the HTTP request was abandoned", nil), true
	}
	return answer, true
}

// request answers one request of a caller (id: the caller's own).
func (b *bridge) request(ctx context.Context, method string, id json.RawMessage, message rpcMessage) (rpcMessage, error) {
	switch method {
	case "initialize":
		child, err := b.ensureChild(ctx)
		if err != nil {
			return nil, err
		}
		result := make(rpcMessage, len(child.initResult))
		for name, value := range child.initResult {
			result[name] = value
		}
		var params rpcMessage
		var requested *string
		if firstByte(message["params"]) == '{' && json.Unmarshal(message["params"], &params) == nil {
			if version, ok := asString(params["protocolVersion"]); ok {
				requested = &version
			}
		}
		result["protocolVersion"] = rawJSON(negotiate(requested, child.protocolVersion))
		return rpcMessage{"jsonrpc": rawJSON("2.0"), "id": id, "result": rawJSON(result)}, nil
	case "server/discover":
		return rpcError(id, codeMethodNotFound,
			"Method not found: this server speaks the initialize handshake", method), nil
	}
	clientKey, _ := idKey(id)
	for attempt := 0; ; attempt++ {
		child, err := b.ensureChild(ctx)
		if err != nil {
			return nil, err
		}
		forwarded := make(rpcMessage, len(message))
		for name, value := range message {
			forwarded[name] = value
		}
		reply, err := child.request(ctx, forwarded, clientKey, b.timeout)
		if errors.Is(err, errNotDelivered) {
			if attempt > 0 {
				return nil, &bridgeError{codeServerUnavailable,
					"the MCP server process is gone and did not restart", nil}
			}
			logf("stdio: server %d is gone: starting a new one for request %s", child.pid, idText(id))
			continue
		}
		if err != nil {
			return nil, err
		}
		reply["id"] = id
		return reply, nil
	}
}

// notification forwards a caller's notification to a running server (a new one has nothing
// a notification could refer to); initialized is the bridge's own business, and a
// cancellation is mapped to the bridge id of the one request in flight it names.
func (b *bridge) notification(method string, message rpcMessage) {
	if method == "notifications/initialized" {
		return
	}
	child := b.liveChild()
	if child == nil {
		return
	}
	if method == "notifications/cancelled" {
		var params rpcMessage
		if firstByte(message["params"]) == '{' && json.Unmarshal(message["params"], &params) == nil {
			if key, ok := idKey(params["requestId"]); ok {
				child.cancel(key, params["requestId"], params)
			}
		}
		return
	}
	_ = child.send(frame(message))
}
