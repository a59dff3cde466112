package main

// The issuer's signing keys (mode "oauth"): the JWKS at auth.jwks_uri, or at the jwks_uri of
// the issuer's metadata (OpenID discovery, else RFC 8414), fetched on first need, cached for
// keysFresh, fetched again for an unknown kid (key rotation) unless the last fetch was less
// than refetchAfter ago.

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	keysFresh    = 10 * time.Minute
	refetchAfter = 5 * time.Second
	fetchTimeout = 5 * time.Second
	maxDocument  = 1 << 20 // bytes of a metadata document or key set
	minRSABits   = 2048
)

var (
	errKeysUnavailable = errors.New("the issuer's keys cannot be fetched")
	errNoKey           = errors.New("no key of the issuer matches the token")
	errKeyAmbiguous    = errors.New("the token names no key and the issuer has not exactly one")
)

// publicKey is one usable key of the set: kind is "RSA", "P-256", "P-384", "P-521" or
// "Ed25519"; alg the JWK's own "alg" ("" = any of its kind's algorithms).
type publicKey struct {
	kid    string
	hasKid bool
	alg    string
	kind   string
	key    crypto.PublicKey
}

// fits: the key can verify a signature made with alg.
func (k *publicKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.kind == "RSA"
	case "ES256":
		return k.kind == "P-256"
	case "ES384":
		return k.kind == "P-384"
	case "ES512":
		return k.kind == "P-521"
	case "EdDSA":
		return k.kind == "Ed25519"
	}
	return false
}

// keySet is the issuer's keys, fetched and cached. Safe for concurrent use: one fetch at a
// time, the others wait for it.
type keySet struct {
	issuer  string
	jwksURI string // configured; "" = discovered from the issuer's metadata
	client  *http.Client
	now     func() time.Time

	mu         sync.Mutex
	discovered string
	keys       []publicKey
	fetchedAt  time.Time // last successful fetch (zero: none yet)
	attemptAt  time.Time // last fetch attempt
	failed     bool      // the last attempt failed
}

func newKeySet(issuer, jwksURI string) *keySet {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &keySet{
		issuer:  issuer,
		jwksURI: jwksURI,
		client:  &http.Client{Timeout: fetchTimeout, Transport: transport},
		now:     time.Now,
	}
}

// find returns the key for a token signed with alg, with kid when hasKid (else the only key
// that fits alg). errNoKey (errKeyAmbiguous without kid) when there is none, even after a
// fetch; errKeysUnavailable (wrapped) when the keys cannot be fetched.
func (s *keySet) find(kid string, hasKid bool, alg string) (crypto.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.fetchedAt.IsZero() || now.Sub(s.fetchedAt) >= keysFresh {
		if err := s.refresh(now); err != nil {
			return nil, err
		}
	}
	if key := s.match(kid, hasKid, alg); key != nil {
		return key, nil
	}
	if now.Sub(s.attemptAt) < refetchAfter {
		return nil, s.noKey(hasKid)
	}
	if err := s.refresh(now); err != nil {
		return nil, err
	}
	if key := s.match(kid, hasKid, alg); key != nil {
		return key, nil
	}
	return nil, s.noKey(hasKid)
}

// noKey is errKeyAmbiguous for a token without kid, else errNoKey.
func (s *keySet) noKey(hasKid bool) error {
	if hasKid {
		return errNoKey
	}
	return errKeyAmbiguous
}

// match is the key for kid (or the only key that fits alg, without a kid), or nil.
func (s *keySet) match(kid string, hasKid bool, alg string) crypto.PublicKey {
	var found []crypto.PublicKey
	for i := range s.keys {
		key := &s.keys[i]
		if key.fits(alg) && (!hasKid || (key.hasKid && key.kid == kid)) {
			found = append(found, key.key)
		}
	}
	if len(found) == 0 || (!hasKid && len(found) != 1) {
		return nil
	}
	return found[0]
}

// refresh fetches the keys (the caller holds mu). A failure within refetchAfter of the last
// failed attempt is not tried again: the issuer is not asked more than once per refetchAfter.
func (s *keySet) refresh(now time.Time) error {
	if s.failed && now.Sub(s.attemptAt) < refetchAfter {
		return errKeysUnavailable
	}
	s.attemptAt = now
	keys, err := s.fetch()
	if err != nil {
		s.failed = true
		logf("oauth: %v: %v", errKeysUnavailable, err)
		return fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	s.failed = false
	s.keys = keys
	s.fetchedAt = now
	return nil
}

// fetch reads the key set (discovering its URL first when needed).
func (s *keySet) fetch() ([]publicKey, error) {
	uri := s.jwksURI
	if uri == "" {
		if s.discovered == "" {
			found, err := s.discover()
			if err != nil {
				return nil, err
			}
			s.discovered = found
		}
		uri = s.discovered
	}
	var document struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := s.getJSON(uri, &document); err != nil {
		return nil, err
	}
	if document.Keys == nil {
		return nil, fmt.Errorf("%s is not a JSON Web Key Set (no \"keys\")", uri)
	}
	keys := make([]publicKey, 0, len(document.Keys))
	for _, raw := range document.Keys {
		if key, ok := parseJWK(raw); ok {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// discover finds jwks_uri in the issuer's metadata: OpenID discovery
// (<issuer>/.well-known/openid-configuration), else RFC 8414
// (https://host/.well-known/oauth-authorization-server<issuer path>). The document must name
// the configured issuer exactly.
func (s *keySet) discover() (string, error) {
	var failures []string
	for _, where := range metadataURLs(s.issuer) {
		var metadata struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		err := s.getJSON(where, &metadata)
		switch {
		case err != nil:
		case metadata.Issuer != s.issuer:
			err = fmt.Errorf("%s names the issuer %q, not %q", where, metadata.Issuer, s.issuer)
		case !isHTTPURL(metadata.JWKSURI):
			err = fmt.Errorf("%s has no http(s) jwks_uri", where)
		default:
			return metadata.JWKSURI, nil
		}
		failures = append(failures, err.Error())
	}
	return "", errors.New(strings.Join(failures, "; "))
}

// metadataURLs are where the issuer's metadata may be, in the order they are tried.
func metadataURLs(issuer string) []string {
	urls := []string{strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"}
	if parsed, err := url.Parse(issuer); err == nil {
		urls = append(urls, parsed.Scheme+"://"+parsed.Host+"/.well-known/oauth-authorization-server"+
			strings.TrimRight(parsed.EscapedPath(), "/"))
	}
	return urls
}

// getJSON GETs where (200 only, at most maxDocument bytes) and decodes it into into.
func (s *keySet) getJSON(where string, into any) error {
	request, err := http.NewRequest(http.MethodGet, where, nil)
	if err != nil {
		return err
	}
	request.Header.Set("Accept", "application/json")
	response, err := s.client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", where, response.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(response.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %v", where, err)
	}
	if len(data) > maxDocument {
		return fmt.Errorf("GET %s: more than %d bytes", where, maxDocument)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("GET %s: not the expected JSON: %v", where, err)
	}
	return nil
}

// isHTTPURL: an absolute http or https URL with a host.
func isHTTPURL(value string) bool {
	parsed, err := url.Parse(value)
	return err == nil && (parsed.Scheme == "http" || parsed.Scheme == "https") && parsed.Host != ""
}

// parseJWK turns one JWK into a usable public key: RSA (at least minRSABits), EC on P-256,
// P-384 or P-521 (the point checked to be on the curve), OKP Ed25519. Keys for encryption
// ("use" other than "sig", "key_ops" without "verify"), of other types or malformed are not
// usable (false).
func parseJWK(raw json.RawMessage) (publicKey, bool) {
	var jwk struct {
		Kty    string   `json:"kty"`
		Kid    *string  `json:"kid"`
		Use    string   `json:"use"`
		KeyOps []string `json:"key_ops"`
		Alg    string   `json:"alg"`
		Crv    string   `json:"crv"`
		N      string   `json:"n"`
		E      string   `json:"e"`
		X      string   `json:"x"`
		Y      string   `json:"y"`
	}
	if json.Unmarshal(raw, &jwk) != nil || (jwk.Use != "" && jwk.Use != "sig") {
		return publicKey{}, false
	}
	if jwk.KeyOps != nil && !slices.Contains(jwk.KeyOps, "verify") {
		return publicKey{}, false
	}
	key := publicKey{alg: jwk.Alg}
	if jwk.Kid != nil {
		key.kid, key.hasKid = *jwk.Kid, true
	}
	switch jwk.Kty {
	case "RSA":
		n, okN := decodeBase64URL(jwk.N)
		e, okE := decodeBase64URL(jwk.E)
		if !okN || !okE || len(e) == 0 || len(e) > 4 {
			return publicKey{}, false
		}
		modulus := new(big.Int).SetBytes(n)
		exponent := new(big.Int).SetBytes(e)
		if modulus.BitLen() < minRSABits || !exponent.IsInt64() || exponent.Int64() < 3 ||
			exponent.Int64() > 1<<31-1 || exponent.Bit(0) == 0 {
			return publicKey{}, false
		}
		key.kind, key.key = "RSA", &rsa.PublicKey{N: modulus, E: int(exponent.Int64())}
	case "EC":
		curves := map[string]struct {
			curve elliptic.Curve
			ecdh  ecdh.Curve
			size  int
		}{
			"P-256": {elliptic.P256(), ecdh.P256(), 32},
			"P-384": {elliptic.P384(), ecdh.P384(), 48},
			"P-521": {elliptic.P521(), ecdh.P521(), 66},
		}
		curve, known := curves[jwk.Crv]
		x, okX := decodeBase64URL(jwk.X)
		y, okY := decodeBase64URL(jwk.Y)
		if !known || !okX || !okY || len(x) != curve.size || len(y) != curve.size {
			return publicKey{}, false
		}
		point := append(append([]byte{4}, x...), y...)
		if _, err := curve.ecdh.NewPublicKey(point); err != nil { // not on the curve
			return publicKey{}, false
		}
		key.kind = jwk.Crv
		key.key = &ecdsa.PublicKey{Curve: curve.curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	case "OKP":
		x, ok := decodeBase64URL(jwk.X)
		if jwk.Crv != "Ed25519" || !ok || len(x) != ed25519.PublicKeySize {
			return publicKey{}, false
		}
		key.kind, key.key = "Ed25519", ed25519.PublicKey(x)
	default:
		return publicKey{}, false
	}
	return key, true
}

// decodeBase64URL decodes base64url, with or without padding.
func decodeBase64URL(value string) ([]byte, bool) {
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
	return data, err == nil
}
