package main

// The public base URL of a request, the Origin check (every auth mode) and how a request that
// passed the gate is presented to the server (contract points 1, 4 and 7 of
// docs/auth.md's gate behaviour).

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// publicURLVariable, when set, is the public base URL (scheme://host[:port]) clients use: the
// local emulations set it, since their front doors present a cloud Host.
const publicURLVariable = "MCP_DEPLOY_PUBLIC_URL"

// forbiddenOriginBody is the 403 body for a foreign Origin (Python's json.dumps spacing).
const forbiddenOriginBody = `{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"}}`

// front knows the public base URL of requests and which Origins may call.
type front struct {
	public   string          // from MCP_DEPLOY_PUBLIC_URL, normalised; "" = from each request
	onLambda bool            // behind the Lambda Web Adapter: the scheme is always https
	allowed  map[string]bool // auth.allowed_origins, normalised
}

// newFront checks publicURL (empty: not set; its path, if any, is ignored, as the Python
// gate ignores it) and the allowed Origins.
func newFront(publicURL string, onLambda bool, allowedOrigins []string) (*front, error) {
	f := &front{onLambda: onLambda, allowed: map[string]bool{}}
	if publicURL = strings.TrimSpace(publicURL); publicURL != "" {
		parsed, err := url.Parse(publicURL)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" || parsed.User != nil {
			return nil, fmt.Errorf("%s must be the public base URL, scheme://host[:port], not %q",
				publicURLVariable, publicURL)
		}
		f.public = strings.ToLower(parsed.Scheme + "://" + parsed.Host)
	}
	for _, origin := range allowedOrigins {
		if origin == "" {
			return nil, errors.New(`"auth.allowed_origins" holds an empty string`)
		}
		f.allowed[normalOrigin(origin)] = true
	}
	return f, nil
}

// base is the public base URL of r, scheme://host[:port] with no path: MCP_DEPLOY_PUBLIC_URL
// when set; else on Lambda https:// + Host (the Web Adapter forwards the Function URL's Host,
// the event's requestContext.domainName); else (Cloud Run) X-Forwarded-Proto (http or https;
// https when absent) :// Host.
func (f *front) base(r *http.Request) string {
	if f.public != "" {
		return f.public
	}
	scheme := "https"
	if !f.onLambda {
		if proto := forwardedProto(r.Header); proto != "" {
			scheme = proto
		}
	}
	return scheme + "://" + r.Host
}

// forwardedProto is the first X-Forwarded-Proto value when it is http or https, else "".
func forwardedProto(header http.Header) string {
	value, _, _ := strings.Cut(header.Get("X-Forwarded-Proto"), ",")
	value = strings.ToLower(strings.TrimSpace(value))
	if value == "http" || value == "https" {
		return value
	}
	return ""
}

// originAllowed: no Origin header, or every Origin value is the base URL's origin or one of
// auth.allowed_origins (case-insensitive, a trailing "/" ignored; "null" only when listed).
func (f *front) originAllowed(origins []string, base string) bool {
	own := normalOrigin(base)
	for _, origin := range origins {
		normal := normalOrigin(origin)
		if normal != own && !f.allowed[normal] {
			return false
		}
	}
	return true
}

// normalOrigin is an origin as compared: trimmed, without a trailing "/", lowercase.
func normalOrigin(origin string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(origin), "/"))
}

// presentAsLoopback prepares a request that passed the gate for the server, as the Python
// shims do: Origin removed, the original Host in X-Forwarded-Host and the scheme the platform
// says (X-Forwarded-Proto, else https) in X-Forwarded-Proto, replacing any the client sent.
// The proxy then sends it with Host 127.0.0.1:<the server's port>, so the SDKs'
// DNS-rebinding protection stays on at its defaults.
func presentAsLoopback(r *http.Request) {
	proto := forwardedProto(r.Header)
	if proto == "" {
		proto = "https"
	}
	r.Header.Del("Origin")
	r.Header.Set("X-Forwarded-Host", r.Host)
	r.Header.Set("X-Forwarded-Proto", proto)
}
