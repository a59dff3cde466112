module mcp-deploy.dev/launcher

go 1.22

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	golang.org/x/crypto/x509roots/fallback v0.0.0-20240904212608-c9da6b9a4008
)
