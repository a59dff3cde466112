package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

// newProxy forwards requests to the server on 127.0.0.1:port. The server sees
// Host 127.0.0.1:<port> (so an SDK's DNS-rebinding check passes without being disabled), the
// original host and scheme in X-Forwarded-Host and X-Forwarded-Proto (as the gate set them,
// presentAsLoopback), no Origin (the gate checked and removed it); X-Forwarded-For continues
// the inbound chain. Request and response bodies stream; responses are flushed as they come
// (FlushInterval -1), so server-sent events reach the client at once.
func newProxy(port int) *httputil.ReverseProxy {
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	transport := &http.Transport{
		Proxy:               nil, // never an HTTP proxy for loopback
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true, // pass encodings through untouched
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			proto := forwardedProto(r.In.Header)
			host := r.In.Header.Get("X-Forwarded-Host")
			r.Out.Header["X-Forwarded-For"] = r.In.Header["X-Forwarded-For"]
			r.SetURL(target)
			r.SetXForwarded()
			if proto != "" {
				r.Out.Header.Set("X-Forwarded-Proto", proto)
			}
			if host != "" {
				r.Out.Header.Set("X-Forwarded-Host", host)
			}
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      log.New(os.Stderr, programName+": proxy: ", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, context.Canceled) { // not when the client went away
				logf("proxy: %s %s: %v", r.Method, oneLine(r.URL.Path, 200), err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}
