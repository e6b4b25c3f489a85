package slotgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type session struct {
	UserID string   `json:"userId"`
	Token  string   `json:"token"`
	Roles  []string `json:"roles"`
}

type roomState struct {
	Players []string       `json:"players"`
	Turn    int            `json:"turn"`
	Tokens  map[string]int `json:"tokens"`
}

// backends runs f against the in-memory fake and, under the conformance
// runner, against a live slotgate. newPeer gives another client to the
// same server (another process, as far as leases go).
func backends(t *testing.T, f func(t *testing.T, g *GameCache, newPeer func() *GameCache)) {
	t.Run("memory", func(t *testing.T) {
		mem := NewMemoryClient(nil)
		g := NewGameCache(mem, nil)
		defer g.Close()
		f(t, g, func() *GameCache { return NewGameCache(mem.NewPeer(), nil) })
	})
	t.Run("live", func(t *testing.T) {
		if os.Getenv("SG_CONF_HOST") == "" {
			t.Skip("no live slotgate (run under tests/conformance/run.sh)")
		}
		opt := envOptions(t)
		g := NewGameCache(NewClient(opt), nil)
		defer g.Close()
		f(t, g, func() *GameCache { return NewGameCache(NewClient(opt), nil) })
	})
}

func uniq() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestGameCacheDomain(t *testing.T) {
	backends(t, func(t *testing.T, g *GameCache, _ func() *GameCache) {
		ctx := context.Background()
		u := "u" + uniq()
		var s session
		if ok, err := g.GetUserSession(ctx, u, &s); ok || err != nil {
			t.Fatalf("miss: %v %v", ok, err)
		}
		want := session{UserID: u, Token: "t0k", Roles: []string{"gm"}}
		if err := g.SetUserSession(ctx, u, want, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ok, err := g.GetUserSession(ctx, u, &s); !ok || err != nil || s.Token != "t0k" || s.Roles[0] != "gm" {
			t.Fatalf("hit: %v %v %+v", ok, err, s)
		}
		r := "r" + uniq()
		big := roomState{Players: make([]string, 200), Turn: 3, Tokens: map[string]int{"hero": 5}}
		for i := range big.Players {
			big.Players[i] = "player-with-a-long-name"
		}
		if err := g.SetRoomState(ctx, r, big, 0); err != nil {
			t.Fatal(err)
		}
		var rs roomState
		if ok, err := g.GetRoomState(ctx, r, &rs); !ok || err != nil || rs.Turn != 3 || len(rs.Players) != 200 || rs.Tokens["hero"] != 5 {
			t.Fatalf("room: %v %v", ok, err)
		}
		a := "a" + uniq()
		if err := g.SetAssetMetadata(ctx, a, map[string]string{"url": "/x.png"}, 0); err != nil {
			t.Fatal(err)
		}
		var meta map[string]string
		if ok, err := g.GetAssetMetadata(ctx, a, &meta); !ok || err != nil || meta["url"] != "/x.png" {
			t.Fatalf("asset: %v %v %v", ok, err, meta)
		}
		sys := "s" + uniq()
		if err := g.SetGameSystemTemplate(ctx, sys, []int{1, 2, 3}, 0); err != nil {
			t.Fatal(err)
		}
		var tpl []int
		if ok, err := g.GetGameSystemTemplate(ctx, sys, &tpl); !ok || err != nil || len(tpl) != 3 {
			t.Fatalf("template: %v %v %v", ok, err, tpl)
		}
		if _, err := g.GetUserSession(ctx, "bad{id}", &s); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("id with braces: %v", err)
		}

		// Batches in the general keyspace.
		k := "batch:" + uniq()
		if err := g.MSet(ctx, Entry{Key: k + ":1", Value: 1}, Entry{Key: k + ":2", Value: "two", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		vs, err := g.MGet(ctx, k+":1", k+":missing", k+":2")
		if err != nil || len(vs) != 3 || !vs[0].Found() || vs[1].Found() || !vs[2].Found() {
			t.Fatalf("mget: %v %v", vs, err)
		}
		var two string
		if err := vs[2].Scan(&two); err != nil || two != "two" {
			t.Fatalf("scan: %v %q", err, two)
		}
		if err := vs[1].Scan(&two); !errors.Is(err, ErrNotFound) {
			t.Fatalf("scan of a miss: %v", err)
		}
		ints, err := MGetAs[int](ctx, g, k+":1", k+":missing")
		if err != nil || *ints[0] != 1 || ints[1] != nil {
			t.Fatalf("MGetAs: %v %v", ints, err)
		}
		if ok, err := g.Delete(ctx, k+":1"); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if n, err := g.InvalidatePattern(ctx, k+":*"); n != 1 || err != nil {
			t.Fatalf("invalidate pattern: %d %v", n, err)
		}

		// Health and stats.
		if h := g.HealthCheck(ctx); !h.Healthy || h.Err != nil {
			t.Fatalf("health: %+v", h)
		}
		st, err := g.GetStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss := st.Keyspaces["session"]
		if ss.Hits < 1 || ss.Misses < 1 || ss.HitRate <= 0 || ss.HitRate >= 1 || st.HitRate <= 0 {
			t.Fatalf("session stats %+v overall %v", ss, st.HitRate)
		}
	})
}

func TestGameCacheInvalidateEntity(t *testing.T) {
	backends(t, func(t *testing.T, g *GameCache, _ func() *GameCache) {
		ctx := context.Background()
		id := uniq()
		u1, u2 := "1"+id, "1"+id+"2" // u1's tag is a prefix of u2's id: must not match
		for _, u := range []string{u1, u2} {
			if err := g.SetUserSession(ctx, u, session{UserID: u}, 0); err != nil {
				t.Fatal(err)
			}
			// Another of the user's keys in another keyspace, same tag.
			if err := g.Client().Keyspace("gamesystem").Set(ctx, "{user:"+u+"}:inventory", []byte("[]"), nil); err != nil {
				t.Fatal(err)
			}
		}
		n, err := g.InvalidateUserData(ctx, u1)
		if err != nil || n != 2 {
			t.Fatalf("invalidate user: %d %v", n, err)
		}
		var s session
		if ok, _ := g.GetUserSession(ctx, u1, &s); ok {
			t.Fatal("u1's session survived")
		}
		if ok, _ := g.GetUserSession(ctx, u2, &s); !ok {
			t.Fatal("u2's session was removed")
		}
		if _, err := g.Client().Keyspace("gamesystem").Get(ctx, "{user:"+u2+"}:inventory"); err != nil {
			t.Fatalf("u2's inventory: %v", err)
		}
		room := "r" + id
		if err := g.SetRoomState(ctx, room, roomState{Turn: 1}, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := g.InvalidateRoomData(ctx, room); err != nil || n != 1 {
			t.Fatalf("invalidate room: %d %v", n, err)
		}
	})
}

// 100 concurrent callers on 4 clients (processes) of one cold key: compute
// runs once and everyone gets its value.
func TestGameCacheCachedQuerySingleFill(t *testing.T) {
	backends(t, func(t *testing.T, g *GameCache, newPeer func() *GameCache) {
		ctx := context.Background()
		caches := []*GameCache{g}
		for i := 0; i < 3; i++ {
			p := newPeer()
			defer p.Close()
			caches = append(caches, p)
		}
		key := "leaderboard:" + uniq()
		var computed atomic.Int32
		release := make(chan struct{})
		compute := func(ctx context.Context) ([]string, error) {
			computed.Add(1)
			<-release // hold the lease until every caller is waiting or done
			return []string{"ann", "bob"}, nil
		}
		var wg sync.WaitGroup
		var started atomic.Int32
		errs := make(chan error, 100)
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				started.Add(1)
				v, err := CachedQuery(ctx, caches[i%4], key, compute, time.Minute)
				if err == nil && (len(v) != 2 || v[1] != "bob") {
					err = errors.New("wrong value")
				}
				errs <- err
			}(i)
		}
		waitFor(t, "all callers started and one computing", func() bool { return started.Load() == 100 && computed.Load() == 1 })
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := computed.Load(); n != 1 {
			t.Fatalf("compute ran %d times", n)
		}
		// A failing compute gives the lease up: the next caller computes.
		k2 := "failing:" + uniq()
		if _, err := CachedQuery(ctx, g, k2, func(context.Context) (int, error) { return 0, errors.New("db down") }, 0); err == nil {
			t.Fatal("compute error not returned")
		}
		var out int
		if err := g.GetCachedQuery(ctx, k2, &out, func(context.Context) (any, error) { return 42, nil }, 0); err != nil || out != 42 {
			t.Fatalf("after a failed compute: %v %d", err, out)
		}
	})
}

// The fake's TTLs follow its clock: a session expires without sleeping.
func TestMemoryTTLWithClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := NewMemoryGameCache(&MemoryOptions{Now: clock}, nil)
	ctx := context.Background()
	if err := g.SetUserSession(ctx, "7", session{UserID: "7"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.SetRoomState(ctx, "9", roomState{}, 0); err != nil { // room default 30 min
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	var s session
	if ok, _ := g.GetUserSession(ctx, "7", &s); ok {
		t.Fatal("session outlived its TTL")
	}
	var r roomState
	if ok, _ := g.GetRoomState(ctx, "9", &r); !ok {
		t.Fatal("room expired before its keyspace default TTL")
	}
	keys := g.Client().mem.m.keysFor("*")
	sort.Strings(keys)
	if len(keys) != 1 || keys[0] != "room:{room:9}:state" {
		t.Fatalf("keys held: %v", keys)
	}
	// TTL above the keyspace maximum (session: 24 h) is refused.
	if err := g.SetUserSession(ctx, "7", s, 25*time.Hour); !errors.Is(err, ErrTTLOutOfRange) {
		t.Fatalf("ttl above max: %v", err)
	}
}
