package main

// Root certificates for the JWKS fetches of mode "oauth" where the system has none: a Cloud
// Run image of a static server is built from scratch, with no CA bundle. Go uses these only
// when it finds no system roots (x509.SetFallbackRoots), so on Lambda (provided.al2023) and
// on a base image with CA certificates the system's roots apply.
import _ "golang.org/x/crypto/x509roots/fallback"
