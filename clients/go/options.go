package slotgate

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// Options configures a Client, in the manner of go-redis's redis.Options.
// Only Addr is required.
type Options struct {
	// Addr is host:port of slotgate (default port 7420).
	Addr string
	// TLSConfig enables TLS (the server's default mode) when non-nil; set
	// RootCAs to the CA that signed the server certificate and ServerName
	// to the host name to verify (when Addr does not carry it), and
	// Certificates for mTLS. A nil TLSConfig means plaintext TCP, which the
	// server accepts only with listen.plaintext: true.
	TLSConfig *tls.Config
	// Token is sent in Hello as auth_token (required when the server has
	// auth.tokens).
	Token string
	// ClientName is sent in Hello (informational). Default "slotgate-go".
	ClientName string
	// Keyspace is the default keyspace of the client ("" = the default
	// keyspace). Client.Keyspace returns a view with another one.
	Keyspace string

	// PoolSize is the number of connections; each multiplexes up to
	// max_inflight requests (from the server's HelloReply). Default 2.
	PoolSize int
	// DialTimeout bounds TCP connect, TLS and the Hello exchange of one
	// connection attempt. Default 5s.
	DialTimeout time.Duration
	// Dialer, if set, opens the TCP connection instead of net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// MinRetryBackoff and MaxRetryBackoff bound the reconnect backoff
	// (exponential with full jitter). Defaults 20ms and 1s.
	MinRetryBackoff time.Duration
	MaxRetryBackoff time.Duration

	// Timeout is the default per-call deadline, sent as deadline_ms; a
	// context deadline that ends sooner wins. 0: the server's default
	// (limits.default_deadline_ms; INVALIDATE: the server maximum).
	Timeout time.Duration
	// TimeoutMargin is added to the server-side deadline for the
	// client-side timer when the context has no deadline of its own, to
	// allow for round trip and queueing. Default 500ms.
	TimeoutMargin time.Duration

	// MaxFrameBytes caps server frames; a larger one fails the connection
	// with FRAME_TOO_LARGE (and every call pending on it). Default 64 MiB.
	MaxFrameBytes int
}

func (o *Options) withDefaults() Options {
	r := *o
	if r.ClientName == "" {
		r.ClientName = "slotgate-go"
	}
	if r.PoolSize <= 0 {
		r.PoolSize = 2
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = 5 * time.Second
	}
	if r.MinRetryBackoff <= 0 {
		r.MinRetryBackoff = 20 * time.Millisecond
	}
	if r.MaxRetryBackoff <= 0 {
		r.MaxRetryBackoff = time.Second
	}
	if r.MaxRetryBackoff < r.MinRetryBackoff {
		r.MaxRetryBackoff = r.MinRetryBackoff
	}
	if r.TimeoutMargin <= 0 {
		r.TimeoutMargin = 500 * time.Millisecond
	}
	if r.MaxFrameBytes <= 0 {
		r.MaxFrameBytes = 64 << 20
	}
	if r.Addr == "" {
		r.Addr = "127.0.0.1:7420"
	} else if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		r.Addr = net.JoinHostPort(r.Addr, "7420")
	}
	if r.TLSConfig != nil {
		r.TLSConfig = r.TLSConfig.Clone()
		if r.TLSConfig.ServerName == "" {
			host, _, _ := net.SplitHostPort(r.Addr)
			r.TLSConfig.ServerName = host
		}
		if r.TLSConfig.MinVersion < tls.VersionTLS12 {
			r.TLSConfig.MinVersion = tls.VersionTLS12
		}
	}
	return r
}
