package slotgate_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	slotgate "github.com/slotgate/slotgate/clients/go"
)

func ExampleNewClient() {
	pem, _ := os.ReadFile("deploy/local/tls/ca.pem")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := slotgate.NewClient(&slotgate.Options{
		Addr:      "127.0.0.1:7420",
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"},
		Token:     os.Getenv("SLOTGATE_TOKEN"),
	})
	defer client.Close()

	ctx := context.Background()
	if err := client.Set(ctx, "{user:123}:token", []byte("abc"), &slotgate.SetOptions{TTL: time.Hour}); err != nil {
		var e *slotgate.Error
		if errors.As(err, &e) && e.Retriable {
			// retry later
		}
	}
	v, err := client.Keyspace("session").Get(ctx, "{user:123}:token")
	if errors.Is(err, slotgate.ErrNotFound) {
		fmt.Println("miss")
	}
	_ = v
}

type Session struct {
	UserID string `json:"userId"`
	Level  int    `json:"level"`
}

// GameCache over the in-memory fake, as in a game server's unit test.
func ExampleGameCache() {
	ctx := context.Background()
	gc := slotgate.NewMemoryGameCache(nil, nil)
	defer gc.Close()

	_ = gc.SetUserSession(ctx, "123", Session{UserID: "123", Level: 7}, time.Hour)
	var s Session
	found, _ := gc.GetUserSession(ctx, "123", &s)
	fmt.Println(found, s.Level)

	calls := 0
	top, _ := slotgate.CachedQuery(ctx, gc, "top3", func(ctx context.Context) ([]string, error) {
		calls++
		return []string{"ann", "bob", "cy"}, nil
	}, time.Minute)
	top, _ = slotgate.CachedQuery(ctx, gc, "top3", func(ctx context.Context) ([]string, error) {
		calls++
		return nil, nil
	}, time.Minute)
	fmt.Println(top, calls)

	n, _ := gc.InvalidateUserData(ctx, "123")
	found, _ = gc.GetUserSession(ctx, "123", &s)
	fmt.Println(n, found)
	// Output:
	// true 7
	// [ann bob cy] 1
	// 1 false
}
