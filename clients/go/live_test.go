package slotgate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLiveBasics(t *testing.T) {
	c := NewClient(envOptions(t))
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("{go:%d}:a", time.Now().UnixNano())
	if _, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v", err)
	}
	if err := c.Set(ctx, key, []byte("v\x00\xff"), nil); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, key)
	if err != nil || string(v) != "v\x00\xff" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := c.Set(ctx, key, []byte("x"), &SetOptions{NX: true}); !errors.Is(err, ErrNotApplied) {
		t.Fatalf("set NX of an existing key: %v", err)
	}
	ok, err := c.Del(ctx, key)
	if err != nil || !ok {
		t.Fatalf("del: %v %v", ok, err)
	}
	_, err = c.Keyspace("nope").Get(ctx, key)
	var se *Error
	if !errors.As(err, &se) || se.Code != CodeUnknownKeyspace || se.Local {
		t.Fatalf("unknown keyspace: %v", err)
	}
	big := make([]byte, 2000)
	_, err = c.Get(ctx, string(big))
	if !errors.As(err, &se) || se.Code != CodeKeyTooLarge || !se.Local {
		t.Fatalf("oversize key not refused locally: %v", err)
	}
}

func TestLiveManyInFlight(t *testing.T) {
	opt := envOptions(t)
	opt.PoolSize = 1
	c := NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	run := time.Now().UnixNano()
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for i := 0; i < 2000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := fmt.Sprintf("m:%d:%d", run, i)
			if err := c.Set(ctx, k, []byte(k), &SetOptions{TTL: time.Minute}); err != nil {
				errs <- err
				return
			}
			v, err := c.Get(ctx, k)
			if err != nil || string(v) != k {
				errs <- fmt.Errorf("get %s: %q %v", k, v, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
