package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	secretArnsVariable   = "MCP_DEPLOY_SECRET_ARNS"
	secretsStdinVariable = "MCP_DEPLOY_SECRETS_STDIN"
	secretAttempts       = 4
	secretAttemptTimeout = 5 * time.Second
	secretBackoff        = 100 * time.Millisecond
)

// readSecrets returns the secrets handed to the launcher: the stdin form (env has
// MCP_DEPLOY_SECRETS_STDIN=1: the first line of stdin, a JSON object NAME -> value), then the
// Lambda form (env has MCP_DEPLOY_SECRET_ARNS: read from Secrets Manager). Errors name
// secrets, never their values.
func readSecrets(env map[string]string, stdin io.Reader) (map[string]string, error) {
	secrets := map[string]string{}
	if env[secretsStdinVariable] == "1" {
		line, err := bufio.NewReader(stdin).ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("cannot read the secrets from stdin: %v", err)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			// No decoder error in the message: it may quote part of a value.
			if json.Unmarshal(line, &secrets) != nil || secrets == nil {
				return nil, errors.New("the first line of stdin is not a JSON object of secret names to strings")
			}
		}
	}
	if raw, set := env[secretArnsVariable]; set && raw != "" {
		var arns map[string]string
		if err := json.Unmarshal([]byte(raw), &arns); err != nil {
			return nil, fmt.Errorf("%s is not a JSON object of secret names to ARNs: %v", secretArnsVariable, err)
		}
		fetched, err := fetchSecrets(context.Background(), arns, env, http.DefaultTransport, time.Now)
		if err != nil {
			return nil, err
		}
		for name, value := range fetched {
			secrets[name] = value
		}
	}
	for name := range secrets {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return nil, fmt.Errorf("%q is not a usable environment variable name for a secret", name)
		}
	}
	return secrets, nil
}

// secretsManager reads secrets with GetSecretValue.
type secretsManager struct {
	endpoint  *url.URL
	region    string
	creds     awsCredentials
	transport http.RoundTripper
	now       func() time.Time
}

// awsError is an error answer of an AWS JSON-protocol service.
type awsError struct {
	Status  int
	Type    string
	Message string
}

func (e *awsError) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// retryable: throttling, 5xx (and transport errors, handled by the caller).
func (e *awsError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
		(e.Status == http.StatusBadRequest && e.Type == "ThrottlingException")
}

// fetchSecrets reads every NAME -> ARN of arns in parallel. On failure the error holds one
// line per failed secret (sorted by name): the NAME and AWS's error type and message.
func fetchSecrets(ctx context.Context, arns map[string]string, env map[string]string,
	transport http.RoundTripper, now func() time.Time) (map[string]string, error) {
	manager, err := newSecretsManager(env, transport, now)
	if err != nil {
		return nil, err
	}
	var (
		mutex    sync.Mutex
		group    sync.WaitGroup
		values   = map[string]string{}
		failures []string
	)
	for name, arn := range arns {
		group.Add(1)
		go func(name, arn string) {
			defer group.Done()
			value, err := manager.getSecretValue(ctx, arn)
			mutex.Lock()
			defer mutex.Unlock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("cannot read secret %s from Secrets Manager: %v", name, err))
			} else {
				values[name] = value
			}
		}(name, arn)
	}
	group.Wait()
	if len(failures) > 0 {
		sort.Strings(failures)
		return nil, errors.New(strings.Join(failures, "\n"))
	}
	return values, nil
}

// newSecretsManager takes region, credentials and endpoint from the environment, as the
// AWS SDKs do on Lambda.
func newSecretsManager(env map[string]string, transport http.RoundTripper, now func() time.Time) (*secretsManager, error) {
	region := env["AWS_REGION"]
	if region == "" {
		region = env["AWS_DEFAULT_REGION"]
	}
	creds := awsCredentials{env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]}
	switch {
	case region == "":
		return nil, fmt.Errorf("%s is set but AWS_REGION is not", secretArnsVariable)
	case creds.AccessKeyID == "" || creds.SecretAccessKey == "":
		return nil, fmt.Errorf("%s is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not", secretArnsVariable)
	}
	endpoint := env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
	if endpoint == "" {
		endpoint = env["AWS_ENDPOINT_URL"]
	}
	if endpoint == "" {
		endpoint = "https://secretsmanager." + region + ".amazonaws.com"
	}
	parsed, err := url.Parse(endpoint)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("the Secrets Manager endpoint %q is not an http(s) URL", endpoint)
	}
	return &secretsManager{parsed, region, creds, transport, now}, nil
}

// getSecretValue reads one secret's SecretString, retrying throttling, 5xx and transport
// errors (secretAttempts in all, exponential backoff with jitter).
func (m *secretsManager) getSecretValue(ctx context.Context, arn string) (string, error) {
	body, _ := json.Marshal(map[string]string{"SecretId": arn})
	var lastErr error
	for attempt := 0; attempt < secretAttempts; attempt++ {
		if attempt > 0 {
			delay := secretBackoff << (attempt - 1)
			time.Sleep(delay + time.Duration(rand.Int63n(int64(delay))))
		}
		value, err := m.call(ctx, body)
		if err == nil {
			return value, nil
		}
		lastErr = err
		var answer *awsError
		if errors.As(err, &answer) && !answer.retryable() {
			break
		}
	}
	return "", lastErr
}

// call makes one signed GetSecretValue request.
func (m *secretsManager) call(ctx context.Context, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, secretAttemptTimeout)
	defer cancel()
	target := *m.endpoint
	if target.Path == "" {
		target.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	signV4(req, body, m.creds, m.region, "secretsmanager", m.now())
	req.Header.Set("User-Agent", programName)
	resp, err := m.transport.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", parseAWSError(resp, data)
	}
	var answer struct {
		SecretString *string `json:"SecretString"`
	}
	if json.Unmarshal(data, &answer) != nil {
		return "", errors.New("the answer is not GetSecretValue's JSON")
	}
	if answer.SecretString == nil {
		return "", errors.New("the secret has no SecretString (binary secrets are not supported)")
	}
	return *answer.SecretString, nil
}

// parseAWSError reads an AWS JSON-protocol error: the type from "__type" (or the
// X-Amzn-ErrorType header), without its namespace; the message from "message"/"Message".
func parseAWSError(resp *http.Response, data []byte) *awsError {
	var fields struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(data, &fields)
	kind := fields.Type
	if kind == "" {
		kind = resp.Header.Get("X-Amzn-ErrorType")
	}
	if i := strings.LastIndex(kind, "#"); i >= 0 {
		kind = kind[i+1:]
	}
	kind, _, _ = strings.Cut(kind, ":")
	if kind == "" {
		kind = "HTTP " + resp.Status
	}
	message := fields.Message
	if message == "" {
		message = fields.Message2
	}
	return &awsError{Status: resp.StatusCode, Type: oneLine(kind, 100), Message: oneLine(message, 300)}
}

// oneLine keeps text printable on one line and at most limit bytes long.
func oneLine(text string, limit int) string {
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	if len(text) > limit {
		text = text[:limit] + "..."
	}
	return text
}
