package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// awsCredentials are the function role's credentials, as Lambda gives them in environment
// variables.
type awsCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

const (
	sigv4Algorithm  = "AWS4-HMAC-SHA256"
	amzDateLayout   = "20060102T150405Z"
	shortDateLayout = "20060102"
)

// signV4 signs req (whose body is body) with AWS Signature Version 4, as botocore's
// SigV4Auth does for a non-S3 service: it sets X-Amz-Date (from now, in UTC),
// X-Amz-Security-Token when creds has a session token, and Authorization. Signed: every
// header already in req.Header plus Host. Headers the HTTP client adds later (User-Agent,
// Content-Length, Accept-Encoding) are not signed, which AWS accepts.
func signV4(req *http.Request, body []byte, creds awsCredentials, region, service string, now time.Time) {
	now = now.UTC()
	amzDate := now.Format(amzDateLayout)
	req.Header.Set("X-Amz-Date", amzDate)
	if creds.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	canonical, signedHeaders := canonicalRequest(req, body)
	scope := strings.Join([]string{now.Format(shortDateLayout), region, service, "aws4_request"}, "/")
	stringToSign := strings.Join([]string{sigv4Algorithm, amzDate, scope, hexSHA256([]byte(canonical))}, "\n")
	key := hmacSHA256([]byte("AWS4"+creds.SecretAccessKey), now.Format(shortDateLayout))
	for _, part := range []string{region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	signature := hex.EncodeToString(hmacSHA256(key, stringToSign))
	req.Header.Set("Authorization", sigv4Algorithm+" Credential="+creds.AccessKeyID+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+signature)
}

// unsignedHeaders are left out of the signature, as botocore leaves them out.
var unsignedHeaders = map[string]bool{
	"expect": true, "transfer-encoding": true, "user-agent": true, "x-amzn-trace-id": true,
}

// canonicalRequest is SigV4's canonical form of req and its signed header list.
func canonicalRequest(req *http.Request, body []byte) (string, string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	values := map[string][]string{"host": {host}}
	for name, vals := range req.Header {
		lower := strings.ToLower(name)
		if unsignedHeaders[lower] || lower == "authorization" {
			continue
		}
		values[lower] = append(values[lower], vals...)
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	var headers strings.Builder
	for _, name := range names {
		trimmed := make([]string, len(values[name]))
		for i, value := range values[name] {
			trimmed[i] = strings.Join(strings.Fields(value), " ")
		}
		headers.WriteString(name + ":" + strings.Join(trimmed, ",") + "\n")
	}
	signed := strings.Join(names, ";")
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{
		req.Method,
		uriEncode(path, false), // non-S3 services: the already-encoded path is encoded again
		canonicalQuery(req.URL.Query()),
		headers.String(),
		signed,
		hexSHA256(body),
	}, "\n")
	return canonical, signed
}

// canonicalQuery sorts the query by encoded name, then encoded value.
func canonicalQuery(query url.Values) string {
	pairs := make([]string, 0, len(query))
	for name, vals := range query {
		for _, value := range vals {
			pairs = append(pairs, uriEncode(name, true)+"="+uriEncode(value, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode percent-encodes every byte but RFC 3986's unreserved characters (and '/' when
// encodeSlash is false), upper-case hex, as SigV4 requires.
func uriEncode(text string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var out strings.Builder
	for i := 0; i < len(text); i++ {
		c := text[i]
		unreserved := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~'
		if unreserved || (c == '/' && !encodeSlash) {
			out.WriteByte(c)
		} else {
			out.WriteByte('%')
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&15])
		}
	}
	return out.String()
}

func hexSHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}
