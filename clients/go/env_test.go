package slotgate

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
)

// envOptions builds client options from the conformance runner's
// environment (tests/conformance/README.md), or skips the test without it.
func envOptions(t testing.TB) *Options {
	t.Helper()
	host, port := os.Getenv("SG_CONF_HOST"), os.Getenv("SG_CONF_PORT")
	if host == "" || port == "" {
		t.Skip("SG_CONF_HOST/SG_CONF_PORT not set: run under tests/conformance/run.sh")
	}
	opt := &Options{Addr: net.JoinHostPort(host, port), Token: os.Getenv("SG_CONF_TOKEN")}
	if ca := os.Getenv("SG_CONF_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", ca)
		}
		opt.TLSConfig = &tls.Config{RootCAs: pool, ServerName: os.Getenv("SG_CONF_SERVER_NAME")}
	}
	return opt
}
