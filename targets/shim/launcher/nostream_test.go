package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGetOnTheMCPPathIsRefusedOnLambdaOnly(t *testing.T) {
	passed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	for _, c := range []struct {
		lambda bool
		method string
		path   string
		want   int
	}{
		{true, "GET", "/mcp", 405},
		{true, "POST", "/mcp", 299},
		{true, "GET", "/health", 299},
		{false, "GET", "/mcp", 299},
	} {
		recorder := httptest.NewRecorder()
		withoutStreams(passed, "/mcp", c.lambda).ServeHTTP(recorder, httptest.NewRequest(c.method, c.path, nil))
		if recorder.Code != c.want {
			t.Errorf("%+v: got %d", c, recorder.Code)
		}
		if c.want == 405 && (recorder.Header().Get("Allow") != "POST, DELETE" || recorder.Body.String() != noStreamBody) {
			t.Errorf("%+v: got %v %q", c, recorder.Header(), recorder.Body.String())
		}
	}
}
