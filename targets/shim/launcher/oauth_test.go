package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// -- an issuer on loopback: discovery document and JWKS, keys made here ------------------

type signer struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	key    crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newSigner(t testing.TB, alg, kid string) *signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256", "RS384", "RS512", "PS384", "PS512":
		rsaOnce.Do(func() { rsaKey, err = rsa.GenerateKey(rand.Reader, 2048) })
		key = rsaKey
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: alg, method: jwt.GetSigningMethod(alg), key: key}
}

func b64(data []byte) string { return base64.RawURLEncoding.EncodeToString(data) }

func fixed(n *big.Int, size int) []byte { return n.FillBytes(make([]byte, size)) }

// jwk is the signer's public key as a JWK (with kid; "alg" only when withAlg).
func (s *signer) jwk(withAlg bool) map[string]any {
	jwk := map[string]any{"kid": s.kid, "use": "sig"}
	if withAlg {
		jwk["alg"] = s.alg
	}
	switch public := s.key.Public().(type) {
	case *rsa.PublicKey:
		jwk["kty"], jwk["n"], jwk["e"] = "RSA", b64(public.N.Bytes()), b64(big.NewInt(int64(public.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (public.Curve.Params().BitSize + 7) / 8
		jwk["kty"], jwk["crv"] = "EC", public.Curve.Params().Name
		jwk["x"], jwk["y"] = b64(fixed(public.X, size)), b64(fixed(public.Y, size))
	case ed25519.PublicKey:
		jwk["kty"], jwk["crv"], jwk["x"] = "OKP", "Ed25519", b64(public)
	}
	return jwk
}

// sign makes a token with claims; header "kid" unless kid is "-" (none).
func (s *signer) sign(t testing.TB, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	token := jwt.NewWithClaims(s.method, claims)
	token.Header["kid"] = s.kid
	token.Header["typ"] = "at+jwt"
	for name, value := range header {
		if value == nil {
			delete(token.Header, name)
		} else {
			token.Header[name] = value
		}
	}
	signed, err := token.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

type issuer struct {
	server     *httptest.Server
	mu         sync.Mutex
	keys       []map[string]any
	down       bool
	discovery  int // discovery documents served
	jwksServed int
	openid     bool   // serve OpenID discovery (else only RFC 8414)
	path       string // the issuer's path ("" or e.g. "/tenant")
	claimed    string // the issuer the metadata names ("" = the right one)
}

func newIssuer(t testing.TB, path string) *issuer {
	is := &issuer{openid: true, path: path}
	is.server = httptest.NewServer(http.HandlerFunc(is.serve))
	t.Cleanup(is.server.Close)
	return is
}

func (is *issuer) url() string { return is.server.URL + is.path }

func (is *issuer) serve(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.down {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	named := is.claimed
	if named == "" {
		named = is.url()
	}
	metadata := map[string]any{"issuer": named, "jwks_uri": is.server.URL + "/keys"}
	switch {
	case is.openid && r.URL.Path == is.path+"/.well-known/openid-configuration",
		!is.openid && r.URL.Path == "/.well-known/oauth-authorization-server"+is.path:
		is.discovery++
		_ = json.NewEncoder(w).Encode(metadata)
	case r.URL.Path == "/keys":
		is.jwksServed++
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": is.keys})
	default:
		http.NotFound(w, r)
	}
}

func (is *issuer) publish(keys ...map[string]any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

func (is *issuer) counts() (int, int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.discovery, is.jwksServed
}

// -- the gate under test ------------------------------------------------------------------

const (
	publicBase        = "https://fn.lambda-url.eu-west-1.on.aws"
	resourceURL       = publicBase + "/mcp"
	challengeMetadata = `resource_metadata="` + publicBase + `/.well-known/oauth-protected-resource/mcp"`
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type harness struct {
	gate    *gate
	clock   *clock
	issuer  *issuer
	handler http.Handler
	seen    *http.Request // the last request that reached the server
}

func newHarness(t testing.TB, is *issuer, edit func(*authConfig)) *harness {
	t.Helper()
	health := "/health"
	auth := &authConfig{
		Mode: "oauth", TokenEnv: "MCP_AUTH_TOKEN", Issuer: is.url(), Scopes: []string{"mcp:tools"},
		Algorithms: []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
	}
	if edit != nil {
		edit(auth)
	}
	g, err := newGate(auth, "/mcp", &health, map[string]string{}, publicBase, true)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{gate: g, clock: &clock{now: time.Unix(1_800_000_000, 0)}, issuer: is}
	g.oauth.now = h.clock.Now
	g.oauth.keys.now = h.clock.Now
	var mu sync.Mutex
	h.handler = g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h.seen = r
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	}))
	return h
}

// claims valid at the harness's time, for the resource, with scope "mcp:tools".
func (h *harness) claims() jwt.MapClaims {
	now := h.clock.Now().Unix()
	return jwt.MapClaims{
		"iss": h.issuer.url(), "aud": resourceURL, "exp": now + 300, "iat": now, "scope": "mcp:tools",
		"client_id": "client-1", "sub": "someone",
	}
}

func (h *harness) do(method, path string, header http.Header) *httptest.ResponseRecorder {
	request := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, strings.NewReader(`{}`))
	request.Host = "fn.lambda-url.eu-west-1.on.aws"
	for name, values := range header {
		request.Header[name] = values
	}
	h.seen = nil
	recorder := httptest.NewRecorder()
	h.handler.ServeHTTP(recorder, request)
	return recorder
}

func (h *harness) call(token string) *httptest.ResponseRecorder {
	return h.do("POST", "/mcp", http.Header{"Authorization": {"Bearer " + token}})
}

func assertRefusal(t *testing.T, name string, got *httptest.ResponseRecorder, status int, challenge, body string) {
	t.Helper()
	if got.Code != status || got.Header().Get("Content-Type") != "application/json" ||
		got.Header().Get("WWW-Authenticate") != challenge || (body != "" && got.Body.String() != body) {
		t.Errorf("%s: got %d %q %q; want %d %q %q", name, got.Code, got.Header().Get("WWW-Authenticate"),
			got.Body.String(), status, challenge, body)
	}
}

// -- tests ----------------------------------------------------------------------------------

func TestOAuthAcceptsEveryKeyTypeAndPassesTheTokenOn(t *testing.T) {
	is := newIssuer(t, "")
	var signers []*signer
	var jwks []map[string]any
	for i, alg := range []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"} {
		s := newSigner(t, alg, "kid-"+alg)
		signers = append(signers, s)
		jwks = append(jwks, s.jwk(i%2 == 0))
	}
	is.publish(jwks...)
	h := newHarness(t, is, nil)
	for _, s := range signers {
		token := s.sign(t, h.claims(), nil)
		got := h.do("POST", "/mcp", http.Header{
			"Authorization": {"Bearer " + token}, "Origin": {"HTTPS://FN.lambda-url.eu-west-1.on.aws/"},
		})
		if got.Code != http.StatusTeapot || h.seen == nil {
			t.Fatalf("%s: refused %d %s", s.alg, got.Code, got.Body.String())
		}
		if h.seen.Header.Get("Authorization") != "Bearer "+token || h.seen.Header.Get("Origin") != "" ||
			h.seen.Header.Get("X-Forwarded-Host") != "fn.lambda-url.eu-west-1.on.aws" ||
			h.seen.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("%s: the server saw %v", s.alg, h.seen.Header)
		}
	}
	if discovery, served := is.counts(); discovery != 1 || served != 1 {
		t.Errorf("discovery %d, JWKS %d times: the keys are cached", discovery, served)
	}
}

func TestOAuthRefusals(t *testing.T) {
	is := newIssuer(t, "")
	es := newSigner(t, "ES256", "es-1")
	rs := newSigner(t, "RS256", "rs-1")
	is.publish(es.jwk(true), rs.jwk(false))
	h := newHarness(t, is, func(a *authConfig) { a.Scopes = []string{"mcp:tools", "mcp:admin"} })
	scope := `scope="mcp:tools mcp:admin"`
	unauthorized := `{"error": "unauthorized", "hint": "send Authorization: Bearer <an access token from ` + is.url() + `>"}`
	challenge := "Bearer " + challengeMetadata + ", " + scope
	invalid := `Bearer error="invalid_token", ` + challengeMetadata + ", " + scope
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		claims := h.claims()
		claims["scope"] = "mcp:tools mcp:admin"
		edit(claims)
		return claims
	}
	valid := es.sign(t, with(func(jwt.MapClaims) {}), nil)
	now := h.clock.Now().Unix()

	assertRefusal(t, "no token", h.do("POST", "/mcp", nil), 401, challenge, unauthorized)
	assertRefusal(t, "basic", h.do("POST", "/mcp", http.Header{"Authorization": {"Basic " + valid}}), 401, challenge, unauthorized)
	assertRefusal(t, "two", h.do("POST", "/mcp", http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}),
		400, refusals[400].challenge, refusals[400].body)
	assertRefusal(t, "comma", h.call(valid+","), 400, refusals[400].challenge, refusals[400].body)

	parts := strings.Split(valid, ".")
	signature, _ := base64.RawURLEncoding.DecodeString(parts[2])
	signature[10] ^= 0x01
	flipped := b64(signature)
	noneHeader := b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"es-1"}`))
	hmac, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, with(func(jwt.MapClaims) {})).SignedString([]byte("secret"))
	for name, c := range map[string]struct {
		token string
		hint  string
	}{
		"garbage":         {"not-a-jwt", "the token is not a signed JWT"},
		"empty":           {"", "the token is not a signed JWT"},
		"five parts":      {valid + ".a.b", "the token is not a signed JWT"},
		"padded":          {parts[0] + "=." + parts[1] + "." + parts[2], "the token is not a signed JWT"},
		"wrong signature": {parts[0] + "." + parts[1] + "." + flipped, "the token's signature is invalid"},
		"other payload":   {parts[0] + "." + strings.Split(es.sign(t, with(func(c jwt.MapClaims) { c["sub"] = "x" }), nil), ".")[1] + "." + parts[2], "the token's signature is invalid"},
		"alg none":        {noneHeader + "." + parts[1] + ".", "the token's algorithm is not allowed (allowed: ES256, ES384, ES512, EdDSA, PS256, RS256)"},
		"alg none signed": {noneHeader + "." + parts[1] + "." + parts[2], "the token's algorithm is not allowed (allowed: ES256, ES384, ES512, EdDSA, PS256, RS256)"},
		"hmac":            {hmac, "the token's algorithm is not allowed (allowed: ES256, ES384, ES512, EdDSA, PS256, RS256)"},
		"other audience":  {es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = "https://other.example/mcp" }), nil), "the token's audience is not " + resourceURL},
		"audience list":   {es.sign(t, with(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), nil), "the token's audience is not " + resourceURL},
		"no audience":     {es.sign(t, with(func(c jwt.MapClaims) { delete(c, "aud") }), nil), "the token has no aud claim"},
		"too long":        {valid + strings.Repeat("A", maxToken), "the token is too long"},
		"expired":         {es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = now - 1 }), nil), "the token has expired"},
		"exp now":         {es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = now }), nil), "the token has expired"},
		"no exp":          {es.sign(t, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil), "the token has no exp claim"},
		"string exp":      {es.sign(t, with(func(c jwt.MapClaims) { c["exp"] = "soon" }), nil), "the token is not a valid signed JWT"},
		"not yet":         {es.sign(t, with(func(c jwt.MapClaims) { c["nbf"] = now + 1 }), nil), "the token is not valid yet (nbf)"},
		"other issuer":    {es.sign(t, with(func(c jwt.MapClaims) { c["iss"] = is.url() + "/" }), nil), "the token's issuer is not " + is.url()},
		"no issuer":       {es.sign(t, with(func(c jwt.MapClaims) { delete(c, "iss") }), nil), "the token has no iss claim"},
		"unknown kid":     {es.sign(t, with(func(jwt.MapClaims) {}), map[string]any{"kid": "nope"}), "no key of the issuer matches the token's kid"},
		"numeric kid":     {es.sign(t, with(func(jwt.MapClaims) {}), map[string]any{"kid": 7}), "no key of the issuer matches the token's kid"},
		"crit":            {es.sign(t, with(func(jwt.MapClaims) {}), map[string]any{"crit": []string{"exp"}}), "the token has critical header parameters this server does not understand"},
		// an RS256 header on the EC key's kid: the key does not fit the algorithm
		"key of another type": {rs.sign(t, with(func(jwt.MapClaims) {}), map[string]any{"kid": "es-1"}), "no key of the issuer matches the token's kid"},
		// the RSA key has no "alg": PS256 fits it, and the RS256 signature does not verify as PS256
		"alg swapped": {strings.Join([]string{b64([]byte(`{"alg":"PS256","kid":"rs-1"}`)),
			strings.Split(rs.sign(t, with(func(jwt.MapClaims) {}), nil), ".")[1],
			strings.Split(rs.sign(t, with(func(jwt.MapClaims) {}), nil), ".")[2]}, "."), "the token's signature is invalid"},
	} {
		assertRefusal(t, name, h.call(c.token), 401, invalid, errorBody("invalid_token", c.hint))
		if h.seen != nil {
			t.Errorf("%s reached the server", name)
		}
	}

	few := es.sign(t, h.claims(), nil) // scope "mcp:tools" only
	assertRefusal(t, "too few scopes", h.call(few), 403,
		`Bearer error="insufficient_scope", `+scope+", "+challengeMetadata,
		`{"error": "insufficient_scope", "hint": "the token lacks: mcp:admin"}`)
	if got := h.call(valid); got.Code != http.StatusTeapot {
		t.Errorf("valid: %d %s", got.Code, got.Body.String())
	}
	if got := h.call(es.sign(t, with(func(c jwt.MapClaims) { c["nbf"] = now }), nil)); got.Code != http.StatusTeapot {
		t.Errorf("nbf == now is valid: %d %s", got.Code, got.Body.String())
	}
	if got := h.do("POST", "/mcp", http.Header{"Authorization": {"bearer   " + valid + " "}}); got.Code != http.StatusTeapot {
		t.Errorf("scheme case and spaces: %d %s", got.Code, got.Body.String())
	}
	if got := h.call(valid); h.seen == nil || h.seen.Header.Get("Authorization") != "Bearer "+valid {
		t.Errorf("the Authorization header is not forwarded unchanged: %d", got.Code)
	}
}

func TestOAuthClaimVariants(t *testing.T) {
	is := newIssuer(t, "")
	es := newSigner(t, "ES256", "")
	jwk := es.jwk(false)
	delete(jwk, "kid")
	is.publish(jwk)
	h := newHarness(t, is, func(a *authConfig) {
		audience := "app-client-7"
		a.Audience, a.AudienceClaim, a.ScopeClaim = &audience, "client_id", "scp"
		a.Scopes = []string{"read", "write"}
	})
	claims := h.claims()
	delete(claims, "aud")
	claims["client_id"], claims["scp"] = "app-client-7", []string{"write", "read"}
	if got := h.call(es.sign(t, claims, map[string]any{"kid": nil})); got.Code != http.StatusTeapot {
		t.Errorf("client_id audience, scp array, no kid and one key: %d %s", got.Code, got.Body.String())
	}
	claims["scp"] = "read write"
	if got := h.call(es.sign(t, claims, map[string]any{"kid": nil})); got.Code != http.StatusTeapot {
		t.Errorf("scp string: %d %s", got.Code, got.Body.String())
	}
	claims["client_id"] = "app-client-8"
	assertRefusal(t, "other client", h.call(es.sign(t, claims, map[string]any{"kid": nil})), 401,
		`Bearer error="invalid_token", `+challengeMetadata+`, scope="read write"`,
		`{"error": "invalid_token", "hint": "the token's client_id is not app-client-7"}`)
	// a second key without kid: a token without kid no longer names one key
	other := newSigner(t, "ES256", "")
	second := other.jwk(false)
	delete(second, "kid")
	is.publish(jwk, second)
	h.clock.advance(keysFresh)
	claims["client_id"] = "app-client-7"
	got := h.call(es.sign(t, claims, map[string]any{"kid": nil}))
	if got.Code != 401 || !strings.Contains(got.Body.String(), "the token names no key (kid) and the issuer has not exactly one") {
		t.Errorf("two keys, no kid: %d %s", got.Code, got.Body.String())
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	is := newIssuer(t, "")
	h := newHarness(t, is, nil)
	foreign := http.Header{"Origin": {"https://evil.example"}}
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		got := h.do("GET", path, foreign)
		var document map[string]any
		if err := json.Unmarshal(got.Body.Bytes(), &document); err != nil || got.Code != 200 {
			t.Fatalf("%s: %d %s", path, got.Code, got.Body.String())
		}
		want := map[string]any{
			"resource": resourceURL, "authorization_servers": []any{is.url()},
			"bearer_methods_supported": []any{"header"}, "scopes_supported": []any{"mcp:tools"},
		}
		if encoded, _ := json.Marshal(document); string(encoded) != string(must(json.Marshal(want))) {
			t.Errorf("%s: %s", path, got.Body.String())
		}
		for name, value := range map[string]string{"Content-Type": "application/json",
			"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"} {
			if got.Header().Get(name) != value {
				t.Errorf("%s: %s is %q", path, name, got.Header().Get(name))
			}
		}
		if got := h.do("HEAD", path, nil); got.Code != 200 || got.Header().Get("Content-Type") != "application/json" {
			t.Errorf("HEAD %s: %d", path, got.Code)
		}
		got = h.do("OPTIONS", path, foreign)
		if got.Code != 204 || got.Header().Get("Access-Control-Allow-Origin") != "*" ||
			got.Header().Get("Access-Control-Allow-Methods") != "GET, HEAD, OPTIONS" ||
			got.Header().Get("Access-Control-Allow-Headers") != "*" {
			t.Errorf("OPTIONS %s: %d %v", path, got.Code, got.Header())
		}
		if got := h.do("POST", path, nil); got.Code != 405 || got.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("POST %s: %d %v", path, got.Code, got.Header())
		}
	}
	if got := h.do("GET", "/.well-known/oauth-protected-resource/other", nil); got.Code != 401 {
		t.Errorf("another well-known path is the server's (behind the gate): %d", got.Code)
	}
	if got := h.do("GET", "/health", http.Header{"Origin": {"https://evil.example"}}); got.Code != http.StatusTeapot {
		t.Errorf("the health path is open: %d", got.Code)
	}

	audience := "https://api.example.com/mcp"
	noScopes := newHarness(t, is, func(a *authConfig) { a.Scopes, a.Audience = nil, &audience })
	got := noScopes.do("GET", "/.well-known/oauth-protected-resource", nil)
	if strings.Contains(got.Body.String(), "scopes_supported") || !strings.Contains(got.Body.String(), `"resource":"`+audience+`"`) {
		t.Errorf("no scopes, audience a URL: %s", got.Body.String())
	}
	assertRefusal(t, "no scopes", noScopes.do("POST", "/mcp", nil), 401, "Bearer "+challengeMetadata, "")
}

func must(data []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return data
}

func TestJWKSIsCachedAndRotated(t *testing.T) {
	is := newIssuer(t, "/tenant")
	is.openid = false // RFC 8414 only: https://host/.well-known/oauth-authorization-server/tenant
	old := newSigner(t, "ES256", "old")
	is.publish(old.jwk(true))
	h := newHarness(t, is, nil)
	if got := h.call(old.sign(t, h.claims(), nil)); got.Code != http.StatusTeapot {
		t.Fatalf("discovered through RFC 8414: %d %s", got.Code, got.Body.String())
	}
	rotated := newSigner(t, "ES256", "new")
	is.publish(rotated.jwk(true))
	h.clock.advance(2 * time.Second)
	if got := h.call(rotated.sign(t, h.claims(), nil)); got.Code != 401 {
		t.Errorf("an unknown kid within 5 s of the last fetch is not fetched again: %d", got.Code)
	}
	if _, served := is.counts(); served != 1 {
		t.Errorf("JWKS served %d times", served)
	}
	h.clock.advance(4 * time.Second)
	if got := h.call(rotated.sign(t, h.claims(), nil)); got.Code != http.StatusTeapot {
		t.Errorf("a new kid after 5 s: refetched: %d %s", got.Code, got.Body.String())
	}
	if got := h.call(old.sign(t, h.claims(), nil)); got.Code != 401 {
		t.Errorf("the retired key: %d", got.Code)
	}
	discovery, served := is.counts()
	if discovery != 1 || served != 2 {
		t.Errorf("discovery %d, JWKS %d (want 1, 2)", discovery, served)
	}
	h.clock.advance(keysFresh)
	if got := h.call(rotated.sign(t, h.claims(), nil)); got.Code != http.StatusTeapot {
		t.Errorf("after 10 minutes: %d", got.Code)
	}
	if _, served := is.counts(); served != 3 {
		t.Errorf("the keys are fetched again after 10 minutes: %d", served)
	}
}

func TestKeysThatCannotBeFetchedAre503(t *testing.T) {
	is := newIssuer(t, "")
	es := newSigner(t, "ES256", "k")
	is.publish(es.jwk(true))
	is.down = true
	h := newHarness(t, is, nil)
	unavailable := `{"error": "temporarily_unavailable", "hint": "the issuer's keys cannot be fetched"}`
	assertRefusal(t, "down", h.call(es.sign(t, h.claims(), nil)), 503, "", unavailable)
	is.mu.Lock()
	is.down = false
	is.mu.Unlock()
	h.clock.advance(time.Second)
	assertRefusal(t, "within 5 s of a failure", h.call(es.sign(t, h.claims(), nil)), 503, "", unavailable)
	h.clock.advance(5 * time.Second)
	if got := h.call(es.sign(t, h.claims(), nil)); got.Code != http.StatusTeapot {
		t.Errorf("back: %d %s", got.Code, got.Body.String())
	}
	if got := h.do("POST", "/mcp", nil); got.Code != 401 {
		t.Errorf("no token needs no keys: %d", got.Code)
	}

	wrong := newIssuer(t, "")
	wrong.claimed = "https://impostor.example"
	wrong.publish(es.jwk(true))
	h = newHarness(t, wrong, nil)
	assertRefusal(t, "metadata naming another issuer", h.call(es.sign(t, h.claims(), nil)), 503, "", unavailable)

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Second)
	}))
	defer slow.Close()
	uri := slow.URL + "/keys"
	h = newHarness(t, is, func(a *authConfig) { a.JWKSURI = &uri })
	h.gate.oauth.keys.client.Timeout = 200 * time.Millisecond
	started := time.Now()
	assertRefusal(t, "slow", h.call(es.sign(t, h.claims(), nil)), 503, "", unavailable)
	if time.Since(started) > time.Second {
		t.Errorf("the fetch timeout did not apply")
	}
}

func TestConfiguredJWKSURIIsUsedWithoutDiscovery(t *testing.T) {
	is := newIssuer(t, "")
	es := newSigner(t, "EdDSA", "ed")
	is.publish(es.jwk(true))
	uri := is.server.URL + "/keys"
	h := newHarness(t, is, func(a *authConfig) { a.JWKSURI = &uri })
	if got := h.call(es.sign(t, h.claims(), nil)); got.Code != http.StatusTeapot {
		t.Fatalf("%d %s", got.Code, got.Body.String())
	}
	if discovery, served := is.counts(); discovery != 0 || served != 1 {
		t.Errorf("discovery %d, JWKS %d", discovery, served)
	}
}

func TestUnusableKeysAreSkipped(t *testing.T) {
	es := newSigner(t, "ES256", "ok")
	good := es.jwk(true)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	offCurve := es.jwk(true)
	offCurve["y"] = b64(make([]byte, 32))
	for name, jwk := range map[string]map[string]any{
		"encryption key": {"kty": "EC", "crv": "P-256", "x": good["x"], "y": good["y"], "use": "enc"},
		"no verify":      {"kty": "EC", "crv": "P-256", "x": good["x"], "y": good["y"], "key_ops": []string{"encrypt"}},
		"RSA 1024":       {"kty": "RSA", "n": b64(smallRSA.N.Bytes()), "e": "AQAB"},
		"even exponent":  {"kty": "RSA", "n": b64(rsaKey.N.Bytes()), "e": "Ag"},
		"off the curve":  offCurve,
		"short x":        {"kty": "EC", "crv": "P-256", "x": "AQ", "y": good["y"]},
		"Ed448":          {"kty": "OKP", "crv": "Ed448", "x": b64(make([]byte, 57))},
		"oct":            {"kty": "oct", "k": "c2VjcmV0"},
		"bad base64":     {"kty": "OKP", "crv": "Ed25519", "x": "!!!"},
	} {
		raw, _ := json.Marshal(jwk)
		if _, ok := parseJWK(raw); ok {
			t.Errorf("%s: usable", name)
		}
	}
	raw, _ := json.Marshal(good)
	if key, ok := parseJWK(raw); !ok || key.kind != "P-256" || !key.fits("ES256") || key.fits("ES384") || key.fits("RS256") {
		t.Errorf("the good key: %+v %v", key, ok)
	}
}

func TestOriginIsCheckedInEveryMode(t *testing.T) {
	forbidden := `{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Forbidden: the Origin is not allowed"}}`
	for _, c := range []struct {
		name      string
		publicURL string
		onLambda  bool
		host      string
		header    http.Header
		allowed   []string
		status    int
	}{
		{"no origin", "", false, "svc-abc.a.run.app", nil, nil, 200},
		{"own origin, Cloud Run", "", false, "svc-abc.a.run.app", http.Header{"Origin": {"https://svc-abc.a.run.app"}}, nil, 200},
		{"own origin, upper case", "", false, "svc-abc.a.run.app", http.Header{"Origin": {"HTTPS://SVC-ABC.A.RUN.APP"}}, nil, 200},
		{"http when forwarded so", "", false, "svc.test:8080", http.Header{"Origin": {"http://svc.test:8080"}, "X-Forwarded-Proto": {"http"}}, nil, 200},
		{"https by default", "", false, "svc.test:8080", http.Header{"Origin": {"http://svc.test:8080"}}, nil, 403},
		{"Lambda is https", "", true, "fn.on.aws", http.Header{"Origin": {"http://fn.on.aws"}, "X-Forwarded-Proto": {"http"}}, nil, 403},
		{"Lambda own", "", true, "fn.on.aws", http.Header{"Origin": {"https://fn.on.aws"}}, nil, 200},
		{"foreign", "", false, "svc.test", http.Header{"Origin": {"https://evil.example"}}, nil, 403},
		{"other port", "", false, "svc.test", http.Header{"Origin": {"https://svc.test:8443"}}, nil, 403},
		{"trailing slash", "", false, "svc.test", http.Header{"Origin": {"https://svc.test/"}}, nil, 200},
		{"default port", "", false, "svc.test", http.Header{"Origin": {"https://svc.test:443"}}, nil, 403},
		{"null", "", false, "svc.test", http.Header{"Origin": {"null"}}, nil, 403},
		{"null listed", "", false, "svc.test", http.Header{"Origin": {"null"}}, []string{"null"}, 200},
		{"listed", "", false, "svc.test", http.Header{"Origin": {"https://App.Example.com"}}, []string{"https://app.example.com"}, 200},
		{"public URL wins", "HTTP://127.0.0.1:9000/mcp", false, "svc.test", http.Header{"Origin": {"http://127.0.0.1:9000"}}, nil, 200},
		{"not the Host then", "http://127.0.0.1:9000", false, "svc.test", http.Header{"Origin": {"https://svc.test"}}, nil, 403},
		{"two, one foreign", "", false, "svc.test", http.Header{"Origin": {"https://svc.test", "https://evil.example"}}, nil, 403},
		{"empty", "", false, "svc.test", http.Header{"Origin": {""}}, nil, 403},
	} {
		for _, mode := range []string{"none", "iam", "bearer"} {
			g, err := newGate(&authConfig{Mode: mode, TokenEnv: "T", AllowedOrigins: c.allowed}, "/mcp", nil,
				map[string]string{"T": "tok"}, c.publicURL, c.onLambda)
			if err != nil {
				t.Fatal(err)
			}
			var seen *http.Request
			handler := g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
			request := httptest.NewRequest("POST", "/mcp", nil)
			request.Host = c.host
			for name, values := range c.header {
				request.Header[name] = values
			}
			request.Header.Set("Authorization", "Bearer tok")
			got := httptest.NewRecorder()
			handler.ServeHTTP(got, request)
			switch {
			case got.Code != c.status:
				t.Errorf("%s (%s): %d, want %d", c.name, mode, got.Code, c.status)
			case c.status == 403 && (got.Body.String() != forbidden || got.Header().Get("Content-Type") != "application/json"):
				t.Errorf("%s (%s): %q", c.name, mode, got.Body.String())
			case c.status == 200 && (seen.Header.Get("Origin") != "" || seen.Header.Values("Origin") != nil):
				t.Errorf("%s (%s): the Origin reached the server", c.name, mode)
			}
		}
	}
	if _, err := newGate(&authConfig{Mode: "none"}, "/mcp", nil, nil, "127.0.0.1:9000", false); err == nil ||
		!strings.Contains(err.Error(), publicURLVariable) {
		t.Errorf("a public URL without a scheme: %v", err)
	}
	if _, err := newGate(&authConfig{Mode: "none"}, "/mcp", nil, nil, "ftp://a.example", false); err == nil {
		t.Errorf("a public URL that is not http(s) is refused")
	}
}

func TestTheServerSeesALoopbackRequest(t *testing.T) {
	var seen *http.Request
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		w.WriteHeader(204)
	}))
	defer server.Close()
	port := server.Listener.Addr().(*net.TCPAddr).Port
	g, err := newGate(&authConfig{Mode: "none"}, "/mcp", nil, nil, "", false)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(g.wrap(newProxy(port)))
	defer front.Close()
	request, _ := http.NewRequest("POST", front.URL+"/mcp", nil)
	request.Host = "svc-abc.a.run.app"
	request.Header.Set("Origin", "https://svc-abc.a.run.app")
	request.Header.Set("X-Forwarded-Proto", "https")
	request.Header.Set("X-Forwarded-Host", "spoofed.example")
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	response.Body.Close()
	if response.StatusCode != 204 || seen == nil {
		t.Fatalf("%d", response.StatusCode)
	}
	want := map[string]string{"Origin": "", "X-Forwarded-Host": "svc-abc.a.run.app", "X-Forwarded-Proto": "https"}
	for name, value := range want {
		if seen.Header.Get(name) != value {
			t.Errorf("%s: %q, want %q", name, seen.Header.Get(name), value)
		}
	}
	if seen.Host != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("Host %s", seen.Host)
	}
}

func TestOAuthConfigIsChecked(t *testing.T) {
	base := `"mode": "oauth", "issuer": "https://idp.example.com", "algorithms": ["RS256"]`
	config, err := parseConfig([]byte(`{"binary": "s", "auth": {` + base + `, "scopes": ["mcp:tools"],
		"audience": null, "jwks_uri": null, "audience_claim": "aud", "scope_claim": "scope",
		"allowed_origins": ["https://app.example.com"]}}`))
	if err != nil || config.Auth.Issuer != "https://idp.example.com" || config.Auth.AllowedOrigins[0] != "https://app.example.com" {
		t.Fatalf("%v %+v", err, config)
	}
	for text, complaint := range map[string]string{
		`"mode": "oauth", "algorithms": ["RS256"]`:                                      `"auth.issuer"`,
		`"mode": "oauth", "issuer": "idp.example.com", "algorithms": ["RS256"]`:         `"auth.issuer"`,
		`"mode": "oauth", "issuer": "https://idp.example.com"`:                          `"auth.algorithms"`,
		`"mode": "oauth", "issuer": "https://idp.example.com", "algorithms": ["none"]`:  `"none"`,
		`"mode": "oauth", "issuer": "https://idp.example.com", "algorithms": ["HS256"]`: `"HS256"`,
		base + `, "audience_claim": "azp"`:                                              `audience_claim`,
		base + `, "scope_claim": "roles"`:                                               `scope_claim`,
		base + `, "scopes": ["a b"]`:                                                    `"auth.scopes"`,
		base + `, "scopes": ["a\"b"]`:                                                   `"auth.scopes"`,
		base + `, "audience": ""`:                                                       `"auth.audience"`,
		base + `, "jwks_uri": "file:///etc/keys"`:                                       `"auth.jwks_uri"`,
		`"mode": "none", "allowed_origins": [""]`:                                       `allowed_origins`,
	} {
		if _, err := parseConfig([]byte(`{"binary": "s", "auth": {` + text + `}}`)); err == nil ||
			!strings.Contains(err.Error(), complaint) {
			t.Errorf("%s: got %v, want it to mention %s", text, err, complaint)
		}
	}
}

func TestPythonJSONString(t *testing.T) {
	for text, want := range map[string]string{
		"plain":         `"plain"`,
		`a "b" \ c`:     `"a \"b\" \\ c"`,
		"tab\tnl\n\x01": `"tab\tnl\n\u0001"`,
		"é<>&\x7f":      `"\u00e9<>&` + "\x7f" + `"`,
		"😀":             `"\ud83d\ude00"`,
	} {
		if got := pythonJSONString(text); got != want {
			t.Errorf("%q: got %s, want %s", text, got, want)
		}
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	is := newIssuer(t, "")
	es := newSigner(t, "ES256", "k")
	is.publish(es.jwk(true))
	h := newHarness(t, is, nil)
	token := es.sign(t, h.claims(), nil)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			request := httptest.NewRequest("POST", "/mcp", nil)
			request.Host = "fn.lambda-url.eu-west-1.on.aws"
			request.Header.Set("Authorization", "Bearer "+token)
			recorder := httptest.NewRecorder()
			h.handler.ServeHTTP(recorder, request)
			codes <- recorder.Code
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusTeapot {
			t.Errorf("refused: %d", code)
		}
	}
	if discovery, served := is.counts(); discovery != 1 || served != 1 {
		t.Errorf("discovery %d, JWKS %d", discovery, served)
	}
}

// BenchmarkGate: one request through the gate (keys cached), bearer against oauth.
func BenchmarkGate(b *testing.B) {
	is := newIssuer(b, "")
	es, rs := newSigner(b, "ES256", "es"), newSigner(b, "RS256", "rs")
	is.publish(es.jwk(true), rs.jwk(true))
	h := newHarness(b, is, nil)
	health := "/health"
	bearer, _ := newGate(&authConfig{Mode: "bearer", TokenEnv: "T"}, "/mcp", &health, map[string]string{"T": testToken}, publicBase, true)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for name, c := range map[string]struct {
		handler http.Handler
		token   string
	}{
		"bearer": {bearer.wrap(next), testToken},
		"ES256":  {h.gate.wrap(next), es.sign(b, h.claims(), nil)},
		"RS256":  {h.gate.wrap(next), rs.sign(b, h.claims(), nil)},
	} {
		b.Run(name, func(b *testing.B) {
			request := httptest.NewRequest("POST", "/mcp", nil)
			request.Host = "fn.lambda-url.eu-west-1.on.aws"
			for i := 0; i < b.N; i++ {
				request.Header = http.Header{"Authorization": {"Bearer " + c.token}}
				c.handler.ServeHTTP(httptest.NewRecorder(), request)
			}
		})
	}
}
