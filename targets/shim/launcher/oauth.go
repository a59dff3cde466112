package main

// Mode "oauth": the server is an OAuth 2.1 resource server. Protected Resource Metadata
// (RFC 9728) at the root and path-suffixed well-known URLs, the 401 challenge that points at
// it, JWT access tokens checked (github.com/golang-jwt/jwt/v5 parses them and verifies the
// signature and exp/nbf/iss/aud; the keys come from keySet), 403 for too few scopes, 503 when
// the issuer's keys cannot be fetched.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/golang-jwt/jwt/v5"
)

const (
	metadataPath = "/.well-known/oauth-protected-resource"
	maxToken     = 16 * 1024 // bytes; a longer token is refused unread (as the other gates do)
)

// signingAlgorithms are the algorithms auth.algorithms may list: never "none", never HMAC.
var signingAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}

// oauthGate checks access tokens as the config's "auth" object says.
type oauthGate struct {
	issuer        string
	audience      string // "" = the resource (the deployed MCP URL)
	scopes        []string
	algorithms    []string
	audienceClaim string // "aud" or "client_id"
	scopeClaim    string // "scope" or "scp"
	mcpPath       string
	keys          *keySet
	now           func() time.Time
}

// checkOAuthConfig checks the oauth keys of the "auth" object and fills in the defaults of
// audience_claim ("aud") and scope_claim ("scope").
func checkOAuthConfig(auth *authConfig) error {
	if !isHTTPURL(auth.Issuer) {
		return fmt.Errorf(`auth mode "oauth" needs "auth.issuer", an http(s) URL, not %q`, auth.Issuer)
	}
	if auth.Audience != nil && *auth.Audience == "" {
		return errors.New(`"auth.audience" must be null or a non-empty string`)
	}
	if auth.JWKSURI != nil && !isHTTPURL(*auth.JWKSURI) {
		return fmt.Errorf(`"auth.jwks_uri" must be null or an http(s) URL, not %q`, *auth.JWKSURI)
	}
	if len(auth.Algorithms) == 0 {
		return errors.New(`auth mode "oauth" needs "auth.algorithms", a non-empty list`)
	}
	for _, alg := range auth.Algorithms {
		if !slices.Contains(signingAlgorithms, alg) {
			return fmt.Errorf(`"auth.algorithms" holds %q: accepted are %s`, alg, strings.Join(signingAlgorithms, ", "))
		}
	}
	for _, scope := range auth.Scopes {
		if scope == "" || strings.ContainsFunc(scope, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			return fmt.Errorf(`"auth.scopes" holds %q, which is not an OAuth scope`, scope)
		}
	}
	switch auth.AudienceClaim {
	case "":
		auth.AudienceClaim = "aud"
	case "aud", "client_id":
	default:
		return fmt.Errorf(`"auth.audience_claim" must be "aud" or "client_id", not %q`, auth.AudienceClaim)
	}
	switch auth.ScopeClaim {
	case "":
		auth.ScopeClaim = "scope"
	case "scope", "scp":
	default:
		return fmt.Errorf(`"auth.scope_claim" must be "scope" or "scp", not %q`, auth.ScopeClaim)
	}
	return nil
}

// newOAuthGate builds the gate of a checked config; mcpPath is the server's MCP path.
func newOAuthGate(auth *authConfig, mcpPath string) *oauthGate {
	o := &oauthGate{
		issuer:        auth.Issuer,
		scopes:        auth.Scopes,
		algorithms:    auth.Algorithms,
		audienceClaim: auth.AudienceClaim,
		scopeClaim:    auth.ScopeClaim,
		mcpPath:       mcpPath,
		now:           time.Now,
	}
	if auth.Audience != nil {
		o.audience = *auth.Audience
	}
	jwksURI := ""
	if auth.JWKSURI != nil {
		jwksURI = *auth.JWKSURI
	}
	o.keys = newKeySet(auth.Issuer, jwksURI)
	return o
}

// resource is the protected resource's identifier: audience when it is a URL, else the
// deployed MCP URL.
func (o *oauthGate) resource(base string) string {
	if strings.HasPrefix(o.audience, "http://") || strings.HasPrefix(o.audience, "https://") {
		return o.audience
	}
	return base + o.mcpPath
}

// expectedAudience is what a token's audience must be: audience when set, else the resource.
func (o *oauthGate) expectedAudience(base string) string {
	if o.audience != "" {
		return o.audience
	}
	return o.resource(base)
}

// isMetadataPath: path is one of the two Protected Resource Metadata URLs.
func (o *oauthGate) isMetadataPath(path string) bool {
	return path == metadataPath || path == metadataPath+o.mcpPath
}

// serveMetadata answers the Protected Resource Metadata URLs (no Origin check: public, CORS).
func (o *oauthGate) serveMetadata(w http.ResponseWriter, r *http.Request, base string) {
	header := w.Header()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		document := struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			BearerMethods        []string `json:"bearer_methods_supported"`
			Scopes               []string `json:"scopes_supported,omitempty"`
		}{o.resource(base), []string{o.issuer}, []string{"header"}, o.scopes}
		body, _ := json.Marshal(document) // strings and lists of strings: cannot fail
		header.Set("Content-Type", "application/json")
		header.Set("Access-Control-Allow-Origin", "*")
		header.Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body) // dropped by net/http for HEAD
	case http.MethodOptions:
		header.Set("Access-Control-Allow-Origin", "*")
		header.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		header.Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
	default:
		header.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// authorize lets the request through (true) or answers it (false): 400 for ambiguous
// credentials, 401 without a bearer token or with an invalid one, 403 for too few scopes,
// 503 when the issuer's keys cannot be fetched.
func (o *oauthGate) authorize(w http.ResponseWriter, r *http.Request, base string) bool {
	values := r.Header.Values("Authorization")
	if len(values) > 1 || (len(values) == 1 && strings.Contains(values[0], ",")) {
		refusal := refusals[http.StatusBadRequest]
		writeRefusal(w, http.StatusBadRequest, refusal.challenge, refusal.body)
		return false
	}
	value := ""
	if len(values) == 1 {
		value = values[0]
	}
	scheme, token, _ := strings.Cut(value, " ")
	metadata := `resource_metadata="` + base + metadataPath + o.mcpPath + `"`
	scope := ""
	if len(o.scopes) > 0 {
		scope = `scope="` + strings.Join(o.scopes, " ") + `"`
	}
	if !strings.EqualFold(scheme, "bearer") {
		writeRefusal(w, http.StatusUnauthorized, joinParams("Bearer "+metadata, scope),
			errorBody("unauthorized", "send Authorization: Bearer <an access token from "+o.issuer+">"))
		return false
	}
	parsed, claims, err := o.validate(strings.Trim(token, pythonSpace), base)
	if errors.Is(err, errKeysUnavailable) {
		writeRefusal(w, http.StatusServiceUnavailable, "",
			errorBody("temporarily_unavailable", "the issuer's keys cannot be fetched"))
		return false
	}
	if err != nil {
		writeRefusal(w, http.StatusUnauthorized, joinParams(`Bearer error="invalid_token", `+metadata, scope),
			errorBody("invalid_token", o.reason(err, parsed, claims, base)))
		return false
	}
	if missing := o.missingScopes(claims); len(missing) > 0 {
		writeRefusal(w, http.StatusForbidden, `Bearer error="insufficient_scope", `+scope+", "+metadata,
			errorBody("insufficient_scope", "the token lacks: "+strings.Join(missing, " ")))
		return false
	}
	return true
}

func joinParams(challenge, scope string) string {
	if scope == "" {
		return challenge
	}
	return challenge + ", " + scope
}

var (
	errCritical    = errors.New(`the token has a "crit" header`)
	errNotAudience = errors.New("the token's client_id is not the audience")
	errTooLong     = errors.New("the token is too long")
)

// validate parses raw and checks it: JWS compact, alg allowed, signed by the issuer's key
// (by kid), iss, audience, exp (required, > now), nbf (<= now), no leeway. The claims are
// returned with any error, for its explanation.
func (o *oauthGate) validate(raw, base string) (*jwt.Token, jwt.MapClaims, error) {
	if len(raw) > maxToken {
		return nil, nil, errTooLong
	}
	expected := o.expectedAudience(base)
	options := []jwt.ParserOption{
		jwt.WithValidMethods(o.algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(o.issuer),
		jwt.WithTimeFunc(o.now),
		jwt.WithStrictDecoding(),
	}
	if o.audienceClaim == "aud" {
		options = append(options, jwt.WithAudience(expected))
	}
	claims := jwt.MapClaims{}
	token, err := jwt.NewParser(options...).ParseWithClaims(raw, claims, o.keyFor)
	if err == nil && o.audienceClaim == "client_id" {
		if clientID, _ := claims["client_id"].(string); clientID != expected {
			err = errNotAudience
		}
	}
	return token, claims, err
}

// keyFor finds the key of a parsed (not yet verified) token: by kid, from the issuer's keys.
func (o *oauthGate) keyFor(token *jwt.Token) (any, error) {
	if _, critical := token.Header["crit"]; critical {
		return nil, errCritical // no extension is understood here (RFC 7515 4.1.11)
	}
	kidValue, hasKid := token.Header["kid"]
	kid, isString := kidValue.(string)
	if hasKid && !isString {
		return nil, errNoKey
	}
	return o.keys.find(kid, hasKid, token.Method.Alg())
}

// reason is the hint of an invalid token, in the Python and Node gates' words: short, never
// the token itself.
func (o *oauthGate) reason(err error, token *jwt.Token, claims jwt.MapClaims, base string) string {
	alg := ""
	if token != nil {
		alg, _ = token.Header["alg"].(string)
	}
	missing := func(claim string) bool {
		_, present := claims[claim]
		return errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && !present
	}
	switch {
	case errors.Is(err, errTooLong):
		return "the token is too long"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is not a signed JWT"
	case !slices.Contains(o.algorithms, alg):
		allowed := slices.Clone(o.algorithms)
		slices.Sort(allowed)
		return "the token's algorithm is not allowed (allowed: " + strings.Join(allowed, ", ") + ")"
	case errors.Is(err, errKeyAmbiguous):
		return "the token names no key (kid) and the issuer has not exactly one"
	case errors.Is(err, errNoKey):
		return "no key of the issuer matches the token's kid"
	case errors.Is(err, errCritical):
		return "the token has critical header parameters this server does not understand"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet (nbf)"
	case missing("exp"):
		return "the token has no exp claim"
	case missing("iss"):
		return "the token has no iss claim"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not " + o.issuer
	case missing("aud"):
		return "the token has no aud claim"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token's audience is not " + o.expectedAudience(base)
	case errors.Is(err, errNotAudience):
		return "the token's client_id is not " + o.expectedAudience(base)
	}
	return "the token is not a valid signed JWT"
}

// missingScopes are the required scopes the token does not carry, in the config's order.
// The claim is a space-separated string, or with scope_claim "scp" also an array of strings.
func (o *oauthGate) missingScopes(claims jwt.MapClaims) []string {
	granted := map[string]bool{}
	switch value := claims[o.scopeClaim].(type) {
	case string:
		for _, scope := range strings.Fields(value) {
			granted[scope] = true
		}
	case []any:
		if o.scopeClaim != "scp" {
			break
		}
		for _, item := range value {
			if scope, ok := item.(string); ok {
				for _, part := range strings.Fields(scope) {
					granted[part] = true
				}
			}
		}
	}
	var missing []string
	for _, scope := range o.scopes {
		if !granted[scope] {
			missing = append(missing, scope)
		}
	}
	return missing
}

// writeRefusal answers status with a JSON body and, when not empty, a WWW-Authenticate
// challenge.
func writeRefusal(w http.ResponseWriter, status int, challenge, body string) {
	w.Header().Set("Content-Type", "application/json")
	if challenge != "" {
		w.Header().Set("Www-Authenticate", challenge)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// errorBody is {"error": code, "hint": hint} as Python's json.dumps writes it.
func errorBody(code, hint string) string {
	return `{"error": ` + pythonJSONString(code) + `, "hint": ` + pythonJSONString(hint) + `}`
}

// pythonJSONString is text as Python's json.dumps writes a string (ensure_ascii: every
// non-ASCII character as \uXXXX, surrogate pairs beyond the BMP).
func pythonJSONString(text string) string {
	var out strings.Builder
	out.WriteByte('"')
	for _, r := range text {
		switch {
		case r == '"':
			out.WriteString(`\"`)
		case r == '\\':
			out.WriteString(`\\`)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\r':
			out.WriteString(`\r`)
		case r == '\t':
			out.WriteString(`\t`)
		case r == '\b':
			out.WriteString(`\b`)
		case r == '\f':
			out.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(&out, `\u%04x`, r)
		case r < 0x80:
			out.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&out, `\u%04x`, r)
		case r > 0xffff:
			high, low := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, high, low)
		}
	}
	out.WriteByte('"')
	return out.String()
}
