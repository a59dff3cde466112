package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const canary = "canary-value-7f3a9c"

// A loopback Secrets Manager: the first call for each secret is throttled, unknown ARNs
// are ResourceNotFoundException, and every call must carry the session token and a SigV4
// Authorization header for service secretsmanager.
func fakeSecretsManager(t *testing.T, values map[string]string) (*httptest.Server, map[string]int) {
	t.Helper()
	var mutex sync.Mutex
	calls := map[string]int{}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mutex.Lock()
		calls[body.SecretId]++
		first := calls[body.SecretId] == 1
		mutex.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		auth := r.Header.Get("Authorization")
		switch {
		case r.Header.Get("X-Amz-Security-Token") != "token" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
			!strings.Contains(auth, "/eu-west-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="):
			w.WriteHeader(403)
			w.Write([]byte(`{"__type":"UnrecognizedClientException","message":"bad request signing"}`))
		case first:
			w.WriteHeader(400)
			w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
		case values[body.SecretId] == "":
			w.WriteHeader(400)
			w.Write([]byte(`{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`))
		default:
			json.NewEncoder(w).Encode(map[string]string{"ARN": body.SecretId, "SecretString": values[body.SecretId]})
		}
	}))
	t.Cleanup(server.Close)
	return server, calls
}

func awsEnv(endpoint string) map[string]string {
	return map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAKEY", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "token", "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
	}
}

func TestFetchSecretsRetriesThrottling(t *testing.T) {
	server, calls := fakeSecretsManager(t, map[string]string{"arn:a": canary, "arn:b": "second"})
	got, err := fetchSecrets(context.Background(), map[string]string{"A": "arn:a", "B": "arn:b"},
		awsEnv(server.URL), http.DefaultTransport, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if got["A"] != canary || got["B"] != "second" || calls["arn:a"] != 2 || calls["arn:b"] != 2 {
		t.Errorf("got %v after calls %v", got, calls)
	}
}

func TestFetchSecretsNamesTheFailedSecret(t *testing.T) {
	server, calls := fakeSecretsManager(t, map[string]string{"arn:a": canary})
	_, err := fetchSecrets(context.Background(), map[string]string{"A": "arn:a", "MISSING": "arn:missing"},
		awsEnv(server.URL), http.DefaultTransport, time.Now)
	want := "cannot read secret MISSING from Secrets Manager: ResourceNotFoundException: Secrets Manager can't find the specified secret."
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
	if calls["arn:missing"] != 2 { // throttled once, then not found: not retried again
		t.Errorf("calls %v", calls)
	}
}

func TestFetchSecretsNeedsRegionAndCredentials(t *testing.T) {
	for _, missing := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID"} {
		env := awsEnv("http://127.0.0.1:9")
		delete(env, missing)
		_, err := fetchSecrets(context.Background(), map[string]string{"A": "arn:a"}, env, http.DefaultTransport, time.Now)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}

func TestSecretsFromStdin(t *testing.T) {
	env := map[string]string{secretsStdinVariable: "1"}
	got, err := readSecrets(env, strings.NewReader(`{"MCP_AUTH_TOKEN": "`+canary+`"}`+"\nrest"))
	if err != nil || got["MCP_AUTH_TOKEN"] != canary {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = readSecrets(env, strings.NewReader(`{"A": "`+canary+`"`+"\n"))
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Errorf("bad JSON: an error without the value, got %v", err)
	}
	got, err = readSecrets(map[string]string{}, strings.NewReader(`{"A": "x"}`))
	if err != nil || len(got) != 0 {
		t.Errorf("stdin is read only when asked: %v, %v", got, err)
	}
}

func TestStdinNullIsRefused(t *testing.T) {
	if _, err := readSecrets(map[string]string{secretsStdinVariable: "1"}, strings.NewReader("null\n")); err == nil {
		t.Error("null is not an object of secrets")
	}
}
