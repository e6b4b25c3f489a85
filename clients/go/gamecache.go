package slotgate

// GameCache is the game-domain layer, with the method names and semantics of
// the ioredis-based cache service it replaces and of the TypeScript and
// Python GameCache: user sessions, room state, asset metadata, game-system
// templates, batches, invalidation, cached queries with a fleet-wide single
// fill, health and stats. Values are JSON by default.
//
// Key layout (PROTOCOL.md section 6: one hash tag per entity, first in the
// key), identical in every language so that services share the keys:
//
//	keyspace    key
//	session     {user:<id>}:session
//	room        {room:<id>}:state
//	asset       {asset:<id>}:meta
//	gamesystem  {gamesystem:<id>}:template
//	""          {query:<key>}        GetCachedQuery
//	""          <your key>           MGet / MSet / Delete / InvalidatePattern

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// GameCacheKeyspaces names the server keyspaces GameCache uses.
type GameCacheKeyspaces struct {
	Session    string
	Room       string
	Asset      string
	GameSystem string
	General    string // MGet/MSet/Delete/InvalidatePattern/GetCachedQuery
}

// DefaultGameCacheKeyspaces: session, room, asset, gamesystem and "".
func DefaultGameCacheKeyspaces() GameCacheKeyspaces {
	return GameCacheKeyspaces{Session: "session", Room: "room", Asset: "asset", GameSystem: "gamesystem", General: ""}
}

// GameCacheOptions configures NewGameCache; the zero value is the default.
type GameCacheOptions struct {
	// Keyspaces; nil: DefaultGameCacheKeyspaces().
	Keyspaces *GameCacheKeyspaces
	// Marshal and Unmarshal encode values; default encoding/json.
	Marshal   func(v any) ([]byte, error)
	Unmarshal func(data []byte, v any) error
	// QueryLeaseTTL is how long one caller may take to compute a cached
	// query before another may (default 10s).
	QueryLeaseTTL time.Duration
	// QueryTTL is the default TTL of GetCachedQuery results (default 5m).
	QueryTTL time.Duration
}

// GameCache: see the file comment. Safe for concurrent use.
type GameCache struct {
	client    *Client
	ks        GameCacheKeyspaces
	marshal   func(v any) ([]byte, error)
	unmarshal func(data []byte, v any) error
	leaseTTL  time.Duration
	queryTTL  time.Duration
}

// NewGameCache returns a GameCache over client (a real Client or one from
// NewMemoryClient).
func NewGameCache(client *Client, opt *GameCacheOptions) *GameCache {
	if opt == nil {
		opt = &GameCacheOptions{}
	}
	g := &GameCache{client: client, ks: DefaultGameCacheKeyspaces(), marshal: opt.Marshal,
		unmarshal: opt.Unmarshal, leaseTTL: opt.QueryLeaseTTL, queryTTL: opt.QueryTTL}
	if opt.Keyspaces != nil {
		g.ks = *opt.Keyspaces
	}
	if g.marshal == nil {
		g.marshal = json.Marshal
	}
	if g.unmarshal == nil {
		g.unmarshal = json.Unmarshal
	}
	if g.leaseTTL <= 0 {
		g.leaseTTL = 10 * time.Second
	}
	if g.queryTTL <= 0 {
		g.queryTTL = 5 * time.Minute
	}
	return g
}

// NewMemoryGameCache is a GameCache over the in-memory fake: the same
// interface and semantics (TTLs, leases, versions), in process, for unit
// tests of game servers.
func NewMemoryGameCache(mem *MemoryOptions, opt *GameCacheOptions) *GameCache {
	return NewGameCache(NewMemoryClient(mem), opt)
}

// Client is the underlying client.
func (g *GameCache) Client() *Client { return g.client }

// Close closes the underlying client (draining calls in progress).
func (g *GameCache) Close() error { return g.client.Close() }

func tagID(kind, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "{}") {
		return "", localError(CodeInvalidKey, "%s id must be non-empty and without { or }", kind)
	}
	return "{" + kind + ":" + id + "}", nil
}

// UserKey, RoomKey, AssetKey, GameSystemKey and QueryKey are the keys
// GameCache uses (see the file comment).
func UserKey(userID string) string   { t, _ := tagID("user", userID); return t + ":session" }
func RoomKey(roomID string) string   { t, _ := tagID("room", roomID); return t + ":state" }
func AssetKey(assetID string) string { t, _ := tagID("asset", assetID); return t + ":meta" }
func GameSystemKey(systemID string) string {
	t, _ := tagID("gamesystem", systemID)
	return t + ":template"
}
func QueryKey(key string) string { t, _ := tagID("query", key); return t }

func (g *GameCache) read(ctx context.Context, ks, kind, id, suffix string, dst any) (bool, error) {
	tag, err := tagID(kind, id)
	if err != nil {
		return false, err
	}
	b, err := g.client.Keyspace(ks).Get(ctx, tag+suffix)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, g.unmarshal(b, dst)
}

func (g *GameCache) write(ctx context.Context, ks, kind, id, suffix string, v any, ttl time.Duration) error {
	tag, err := tagID(kind, id)
	if err != nil {
		return err
	}
	b, err := g.marshal(v)
	if err != nil {
		return err
	}
	return g.client.Keyspace(ks).Set(ctx, tag+suffix, b, &SetOptions{TTL: ttl})
}

// GetUserSession decodes user userID's session into dst; false on a miss.
func (g *GameCache) GetUserSession(ctx context.Context, userID string, dst any) (bool, error) {
	return g.read(ctx, g.ks.Session, "user", userID, ":session", dst)
}

// SetUserSession stores the session; ttl 0: the keyspace default (1 h in
// the example config).
func (g *GameCache) SetUserSession(ctx context.Context, userID string, session any, ttl time.Duration) error {
	return g.write(ctx, g.ks.Session, "user", userID, ":session", session, ttl)
}

// GetRoomState decodes room roomID's state into dst; false on a miss.
func (g *GameCache) GetRoomState(ctx context.Context, roomID string, dst any) (bool, error) {
	return g.read(ctx, g.ks.Room, "room", roomID, ":state", dst)
}

// SetRoomState stores the room state (the room keyspace compresses large
// values); ttl 0: the keyspace default (30 min).
func (g *GameCache) SetRoomState(ctx context.Context, roomID string, state any, ttl time.Duration) error {
	return g.write(ctx, g.ks.Room, "room", roomID, ":state", state, ttl)
}

// GetAssetMetadata decodes asset assetID's metadata into dst.
func (g *GameCache) GetAssetMetadata(ctx context.Context, assetID string, dst any) (bool, error) {
	return g.read(ctx, g.ks.Asset, "asset", assetID, ":meta", dst)
}

// SetAssetMetadata stores asset metadata; ttl 0: the keyspace default (1 h).
func (g *GameCache) SetAssetMetadata(ctx context.Context, assetID string, metadata any, ttl time.Duration) error {
	return g.write(ctx, g.ks.Asset, "asset", assetID, ":meta", metadata, ttl)
}

// GetGameSystemTemplate decodes game system systemID's template into dst.
func (g *GameCache) GetGameSystemTemplate(ctx context.Context, systemID string, dst any) (bool, error) {
	return g.read(ctx, g.ks.GameSystem, "gamesystem", systemID, ":template", dst)
}

// SetGameSystemTemplate stores a template; ttl 0: the keyspace default (2 h).
func (g *GameCache) SetGameSystemTemplate(ctx context.Context, systemID string, template any, ttl time.Duration) error {
	return g.write(ctx, g.ks.GameSystem, "gamesystem", systemID, ":template", template, ttl)
}

// Value is one MGet result: Found reports a hit, Scan decodes it.
type Value struct {
	raw       []byte
	found     bool
	unmarshal func([]byte, any) error
}

// Found reports whether the key held a value.
func (v Value) Found() bool { return v.found }

// Scan decodes the value into dst; ErrNotFound on a miss.
func (v Value) Scan(dst any) error {
	if !v.found {
		return ErrNotFound
	}
	return v.unmarshal(v.raw, dst)
}

// Bytes is the encoded value (nil on a miss).
func (v Value) Bytes() []byte { return v.raw }

// MGet reads keys of the general keyspace in one request (one Redis MGET per
// slot). A key that failed (for example its shard is down) fails the call.
func (g *GameCache) MGet(ctx context.Context, keys ...string) ([]Value, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rs, err := g.client.Keyspace(g.ks.General).MGet(ctx, keys...)
	if err != nil {
		return nil, err
	}
	out := make([]Value, len(rs))
	for i, r := range rs {
		switch {
		case r.Err == nil:
			out[i] = Value{raw: r.Value, found: true, unmarshal: g.unmarshal}
		case errors.Is(r.Err, ErrNotFound):
			out[i] = Value{unmarshal: g.unmarshal}
		default:
			return nil, r.Err
		}
	}
	return out, nil
}

// MGetAs is MGet decoding into T: nil for each miss.
func MGetAs[T any](ctx context.Context, g *GameCache, keys ...string) ([]*T, error) {
	vs, err := g.MGet(ctx, keys...)
	if err != nil {
		return nil, err
	}
	out := make([]*T, len(vs))
	for i, v := range vs {
		if v.found {
			var t T
			if err := v.Scan(&t); err != nil {
				return nil, err
			}
			out[i] = &t
		}
	}
	return out, nil
}

// Entry is one MSet value; TTL 0: the keyspace default.
type Entry struct {
	Key   string
	Value any
	TTL   time.Duration
}

// MSet stores entries in the general keyspace in one request. The first
// per-key failure is returned.
func (g *GameCache) MSet(ctx context.Context, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	items := make([]Item, len(entries))
	for i, e := range entries {
		b, err := g.marshal(e.Value)
		if err != nil {
			return err
		}
		items[i] = Item{Key: e.Key, Value: b, TTL: e.TTL}
	}
	rs, err := g.client.Keyspace(g.ks.General).MSet(ctx, items, nil)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// Delete removes one key of the general keyspace; it reports whether it
// existed.
func (g *GameCache) Delete(ctx context.Context, key string) (bool, error) {
	return g.client.Keyspace(g.ks.General).Del(ctx, key)
}

func (g *GameCache) keyspaceList() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range []string{g.ks.Session, g.ks.Room, g.ks.Asset, g.ks.GameSystem, g.ks.General} {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// invalidateEntity removes every key tagged {kind:id} in each keyspace; each
// INVALIDATE is pinned to the one master owning the tag.
func (g *GameCache) invalidateEntity(ctx context.Context, kind, id string) (int64, error) {
	if _, err := tagID(kind, id); err != nil {
		return 0, err
	}
	pattern := "{" + globEscape(kind+":"+id) + "}*"
	var total int64
	for _, ks := range g.keyspaceList() {
		n, err := g.client.Keyspace(ks).Invalidate(ctx, pattern)
		total += n
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				total += e.Count
			}
			return total, err
		}
	}
	return total, nil
}

// InvalidateUserData removes all of a user's keys ({user:<id>}...) in every
// keyspace and returns how many.
func (g *GameCache) InvalidateUserData(ctx context.Context, userID string) (int64, error) {
	return g.invalidateEntity(ctx, "user", userID)
}

// InvalidateRoomData removes all of a room's keys ({room:<id>}...) in every
// keyspace and returns how many.
func (g *GameCache) InvalidateRoomData(ctx context.Context, roomID string) (int64, error) {
	return g.invalidateEntity(ctx, "room", roomID)
}

// InvalidatePattern deletes every key of the general keyspace matching the
// Redis glob pattern. In the default keyspace "" the pattern sees the full
// Redis keys of every keyspace (as the ioredis service's pattern did).
func (g *GameCache) InvalidatePattern(ctx context.Context, pattern string) (int64, error) {
	return g.client.Keyspace(g.ks.General).Invalidate(ctx, pattern)
}

// InvalidatePatternIn is InvalidatePattern restricted to one keyspace.
func (g *GameCache) InvalidatePatternIn(ctx context.Context, keyspace, pattern string) (int64, error) {
	return g.client.Keyspace(keyspace).Invalidate(ctx, pattern)
}

// GetCachedQuery returns the cached result of a query, computing it at most
// once across every process that shares the cache: the first caller gets a
// lease and runs compute; the others wait for its value. If compute fails
// the lease is given up (the key deleted) so that the next caller computes,
// and the error is returned. The result is decoded into dst (a pointer).
// ttl 0: GameCacheOptions.QueryTTL.
func (g *GameCache) GetCachedQuery(ctx context.Context, key string, dst any, compute func(ctx context.Context) (any, error), ttl time.Duration) error {
	raw, v, fresh, err := g.cachedQuery(ctx, key, compute, ttl)
	if err != nil {
		return err
	}
	if fresh {
		// Round-trip through the codec so dst gets what later callers get.
		if raw, err = g.marshal(v); err != nil {
			return err
		}
	}
	return g.unmarshal(raw, dst)
}

// CachedQuery is GetCachedQuery with a typed compute.
func CachedQuery[T any](ctx context.Context, g *GameCache, key string, compute func(ctx context.Context) (T, error), ttl time.Duration) (T, error) {
	var zero T
	raw, v, fresh, err := g.cachedQuery(ctx, key, func(ctx context.Context) (any, error) { return compute(ctx) }, ttl)
	if err != nil {
		return zero, err
	}
	if fresh {
		return v.(T), nil
	}
	var t T
	if err := g.unmarshal(raw, &t); err != nil {
		return zero, err
	}
	return t, nil
}

func (g *GameCache) cachedQuery(ctx context.Context, key string, compute func(ctx context.Context) (any, error), ttl time.Duration) (raw []byte, v any, fresh bool, err error) {
	k, err := tagID("query", key)
	if err != nil {
		return nil, nil, false, err
	}
	if ttl <= 0 {
		ttl = g.queryTTL
	}
	c := g.client.Keyspace(g.ks.General)
	for {
		l, err := c.GetOrLease(ctx, k, g.leaseTTL)
		if err != nil {
			return nil, nil, false, err
		}
		switch l.Status {
		case CodeOK:
			return l.Value, nil, false, nil
		case CodeLeaseWait:
			d := l.RetryAfter
			if d <= 0 {
				d = 10 * time.Millisecond
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, nil, false, ctxError(ctx)
			}
			continue
		}
		// CodeLeaseGranted: this caller computes.
		v, err := compute(ctx)
		if err != nil {
			_, _ = c.Del(context.WithoutCancel(ctx), k)
			return nil, nil, false, err
		}
		b, err := g.marshal(v)
		if err != nil {
			_, _ = c.Del(context.WithoutCancel(ctx), k)
			return nil, nil, false, err
		}
		if err := c.SetWithLease(ctx, k, b, l.Token, ttl); err != nil && !errors.Is(err, ErrLeaseInvalid) {
			// The value is right even if it could not be cached; a lease
			// that expired meanwhile (LEASE_INVALID) is not an error.
			return b, v, true, err
		}
		return b, v, true, nil
	}
}

// HealthStatus is the result of HealthCheck.
type HealthStatus struct {
	Healthy bool
	Latency time.Duration
	Err     error
}

// HealthCheck is one PING round trip; it never fails, it reports.
func (g *GameCache) HealthCheck(ctx context.Context) HealthStatus {
	start := time.Now()
	err := g.client.Ping(ctx)
	return HealthStatus{Healthy: err == nil, Latency: time.Since(start), Err: err}
}

// KeyspaceStats are one keyspace's counters since the server started.
type KeyspaceStats struct {
	Keyspace    string
	Hits        uint64
	Misses      uint64
	HitRate     float64 // Hits / (Hits + Misses); 0 with no reads
	Sets        uint64
	Invalidated uint64
	LeaseGrants uint64
}

// GameCacheStats: hit rate overall and per GameCache keyspace role
// ("session", "room", "asset", "gamesystem", "general"), and every raw
// counter.
type GameCacheStats struct {
	Hits      uint64
	Misses    uint64
	HitRate   float64
	Keyspaces map[string]KeyspaceStats
	Raw       map[string]uint64
}

// GetStats reads the server's STATS counters.
func (g *GameCache) GetStats(ctx context.Context) (*GameCacheStats, error) {
	raw, err := g.client.Stats(ctx)
	if err != nil {
		return nil, err
	}
	st := &GameCacheStats{Keyspaces: map[string]KeyspaceStats{}, Raw: raw}
	seen := map[string]bool{}
	roles := []struct{ role, ks string }{{"session", g.ks.Session}, {"room", g.ks.Room}, {"asset", g.ks.Asset},
		{"gamesystem", g.ks.GameSystem}, {"general", g.ks.General}}
	for _, r := range roles {
		name := r.ks
		if name == "" {
			name = "default"
		}
		c := func(n string) uint64 { return raw["keyspace."+name+"."+n] }
		s := KeyspaceStats{Keyspace: r.ks, Hits: c("hits"), Misses: c("misses"), Sets: c("sets"),
			Invalidated: c("invalidated"), LeaseGrants: c("lease_grants")}
		s.HitRate = rate(s.Hits, s.Misses)
		st.Keyspaces[r.role] = s
		if !seen[name] {
			seen[name] = true
			st.Hits += s.Hits
			st.Misses += s.Misses
		}
	}
	st.HitRate = rate(st.Hits, st.Misses)
	return st, nil
}

func rate(h, m uint64) float64 {
	if h+m == 0 {
		return 0
	}
	return float64(h) / float64(h+m)
}
