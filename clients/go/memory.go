package slotgate

// The in-memory fake: a *Client whose requests are answered in process by a
// small model of slotgate (validation order, keyspaces with prefixes and
// TTLs, NX/XX, batches, INVALIDATE globs, leases, versions, STATS), for
// unit tests of game servers without a proxy. It runs every conformance
// scenario that needs no cluster.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
)

// KeyspacePolicy is what the fake knows of a server keyspace.
type KeyspacePolicy struct {
	Prefix        string // default "<name>:"
	DefaultTTL    time.Duration
	MaxTTL        time.Duration // 0: unbounded
	MaxValueBytes int           // 0: the global limit
}

// MemoryOptions configures NewMemoryClient.
type MemoryOptions struct {
	// Keyspaces besides the default one ""; nil: DefaultKeyspaces().
	Keyspaces map[string]KeyspacePolicy
	// Limits announced to the client; nil: the server defaults.
	Limits *pb.Limits
	// Keyspace is the client's default keyspace, as Options.Keyspace.
	Keyspace string
	// Now replaces the clock (for tests that move time); nil: time.Now.
	Now func() time.Time
}

// DefaultKeyspaces returns the keyspaces of deploy/local/slotgate.yaml.
func DefaultKeyspaces() map[string]KeyspacePolicy {
	return map[string]KeyspacePolicy{
		"session":    {Prefix: "session:", DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour},
		"room":       {Prefix: "room:", DefaultTTL: 30 * time.Minute, MaxTTL: 24 * time.Hour},
		"asset":      {Prefix: "asset:", DefaultTTL: time.Hour},
		"gamesystem": {Prefix: "gamesystem:", DefaultTTL: 2 * time.Hour},
	}
}

// DefaultLimits returns the limits a default slotgate announces.
func DefaultLimits() *pb.Limits {
	return &pb.Limits{MaxFrameBytes: 8 << 20, MaxKeyBytes: 1024, MaxValueBytes: 4 << 20,
		MaxBatchKeys: 1000, MaxInflight: 1024, DefaultDeadlineMs: 1000, MaxBatchBytes: 8 << 20}
}

// NewMemoryClient returns a Client backed by an in-memory fake of slotgate
// with the same API and semantics. Views (Keyspace, WithTimeout) share it.
func NewMemoryClient(opt *MemoryOptions) *Client {
	if opt == nil {
		opt = &MemoryOptions{}
	}
	m := &memory{data: map[string]*entry{}, stats: map[string]uint64{},
		ks: map[string]KeyspacePolicy{"": {}}, limits: opt.Limits, now: opt.Now}
	kss := opt.Keyspaces
	if kss == nil {
		kss = DefaultKeyspaces()
	}
	for name, p := range kss {
		if p.Prefix == "" {
			p.Prefix = name + ":"
		}
		m.ks[name] = p
	}
	if m.limits == nil {
		m.limits = DefaultLimits()
	}
	if m.now == nil {
		m.now = time.Now
	}
	return &Client{mem: &memHandle{m: m}, keyspace: opt.Keyspace}
}

// memHandle is one fake client: its own closed state over a shared store,
// so that NewPeer gives "another process" on the same fake server.
type memHandle struct {
	m      *memory
	closed atomic.Bool
}

func (h *memHandle) do(ctx context.Context, req *pb.Request, validate bool) (*pb.Response, error) {
	if h.closed.Load() {
		return nil, errClosed()
	}
	return h.m.do(ctx, req, validate)
}

type memory struct {
	mu     sync.Mutex
	ks     map[string]KeyspacePolicy
	limits *pb.Limits
	data   map[string]*entry // by Redis key (prefix ‖ key)
	stats  map[string]uint64
	now    func() time.Time
}

type entry struct {
	val     []byte
	version uint64
	lease   string // non-empty: a lease marker with this token
	exp     time.Time
}

func cp(b []byte) []byte { return append([]byte{}, b...) }

func (m *memory) do(ctx context.Context, req *pb.Request, validate bool) (*pb.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(ctx)
	}
	if validate {
		if err := checkLimits(req, m.limits); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats["requests"]++
	m.stats["responses"]++
	r := m.handle(req)
	r.Id = req.Id
	if r.Code >= 200 {
		m.stats["errors"]++
	}
	return r, nil
}

func resp(c Code, msg string) *pb.Response {
	return &pb.Response{Code: pb.Code(c), Message: msg}
}

func ksStat(ks string) string {
	if ks == "" {
		return "keyspace.default."
	}
	return "keyspace." + ks + "."
}

// get returns the live entry of k (dropping an expired one).
func (m *memory) get(k string) *entry {
	e := m.data[k]
	if e != nil && !e.exp.IsZero() && !m.now().Before(e.exp) {
		delete(m.data, k)
		return nil
	}
	return e
}

func (m *memory) expiry(ttlMs uint64) time.Time {
	if ttlMs == 0 {
		return time.Time{}
	}
	return m.now().Add(time.Duration(ttlMs) * time.Millisecond)
}

func (m *memory) handle(r *pb.Request) *pb.Response {
	op := r.Op
	nk, nv := len(r.Keys), len(r.Values)
	// 1. Shape.
	switch op {
	case pb.Op_OP_PING:
		return &pb.Response{Message: "PONG"}
	case pb.Op_OP_STATS:
		st := make(map[string]uint64, len(m.stats))
		for k, v := range m.stats {
			st[k] = v
		}
		for name := range m.ks {
			for _, c := range []string{"hits", "misses", "sets", "lease_grants", "lease_waits", "lease_rejects", "version_conflicts", "invalidated"} {
				st[ksStat(name)+c] += 0
			}
		}
		st["connections_active"] = 1
		return &pb.Response{Stats: st}
	case pb.Op_OP_GET, pb.Op_OP_DELETE, pb.Op_OP_GET_OR_LEASE, pb.Op_OP_GET_VERSIONED:
		if nk != 1 {
			return resp(CodeInvalidArgument, "exactly one key")
		}
	case pb.Op_OP_SET, pb.Op_OP_SET_VERSIONED:
		if nk != 1 || nv != 1 {
			return resp(CodeInvalidArgument, "exactly one key and one value")
		}
	case pb.Op_OP_SET_WITH_LEASE:
		if nk != 1 || nv != 1 || len(r.Lease) == 0 {
			return resp(CodeInvalidArgument, "exactly one key, one value and a lease")
		}
	case pb.Op_OP_EXPIRE:
		if nk != 1 {
			return resp(CodeInvalidArgument, "exactly one key")
		}
		if r.TtlMs == 0 {
			return resp(CodeTTLOutOfRange, "EXPIRE needs ttl_ms > 0")
		}
	case pb.Op_OP_MGET, pb.Op_OP_MSET, pb.Op_OP_MDELETE:
		if nk == 0 {
			return resp(CodeInvalidArgument, "no keys")
		}
		if mk := int(m.limits.GetMaxBatchKeys()); mk > 0 && nk > mk {
			return resp(CodeBatchTooLarge, "too many keys")
		}
		if op == pb.Op_OP_MSET && (nv != nk || (len(r.TtlsMs) != 0 && len(r.TtlsMs) != nk)) {
			return resp(CodeInvalidArgument, "MSET list lengths differ")
		}
	case pb.Op_OP_INVALIDATE:
		if nk != 0 || len(r.Pattern) == 0 {
			return resp(CodeInvalidArgument, "INVALIDATE takes a pattern and no keys")
		}
	default:
		return resp(CodeUnknownOp, "unknown op")
	}
	// 2. Keyspace.
	pol, ok := m.ks[r.Keyspace]
	if !ok {
		return resp(CodeUnknownKeyspace, "unknown keyspace")
	}
	// 3-6. Keys, pattern, values, batch bytes.
	mkb := int(m.limits.GetMaxKeyBytes())
	total := 0
	for _, k := range r.Keys {
		if len(k) == 0 {
			return resp(CodeInvalidKey, "empty key")
		}
		if mkb > 0 && len(k) > mkb {
			return resp(CodeKeyTooLarge, "key too large")
		}
		total += len(k)
	}
	if mkb > 0 && len(r.Pattern) > mkb {
		return resp(CodeKeyTooLarge, "pattern too large")
	}
	mvb := int(m.limits.GetMaxValueBytes())
	if pol.MaxValueBytes > 0 {
		mvb = pol.MaxValueBytes
	}
	for _, v := range r.Values {
		if mvb > 0 && len(v) > mvb {
			return resp(CodeValueTooLarge, "value too large")
		}
		total += len(v)
	}
	if mb := int(m.limits.GetMaxBatchBytes()); mb > 0 && nk > 1 && total > mb {
		return resp(CodeBatchTooLarge, "batch too large")
	}
	// 7. TTL range for writing ops.
	maxTTL := uint64(pol.MaxTTL / time.Millisecond)
	effTTL := r.TtlMs
	if effTTL == 0 && op != pb.Op_OP_EXPIRE {
		effTTL = uint64(pol.DefaultTTL / time.Millisecond)
	}
	switch op {
	case pb.Op_OP_SET, pb.Op_OP_MSET, pb.Op_OP_SET_WITH_LEASE, pb.Op_OP_SET_VERSIONED,
		pb.Op_OP_EXPIRE, pb.Op_OP_DELETE, pb.Op_OP_MDELETE:
		if maxTTL != 0 {
			if effTTL > maxTTL {
				return resp(CodeTTLOutOfRange, "ttl above the keyspace maximum")
			}
			for _, t := range r.TtlsMs {
				if t > maxTTL {
					return resp(CodeTTLOutOfRange, "ttl above the keyspace maximum")
				}
			}
		}
	}
	st := ksStat(r.Keyspace)
	key := func(i int) string { return pol.Prefix + string(r.Keys[i]) }
	switch op {
	case pb.Op_OP_GET, pb.Op_OP_GET_VERSIONED:
		e := m.get(key(0))
		if e == nil || e.lease != "" {
			m.stats[st+"misses"]++
			return resp(CodeNotFound, "")
		}
		m.stats[st+"hits"]++
		return &pb.Response{Value: cp(e.val), Version: e.version}
	case pb.Op_OP_SET:
		ttl := effTTL
		if len(r.TtlsMs) > 0 && r.TtlsMs[0] != 0 {
			ttl = r.TtlsMs[0]
		}
		c := m.setOne(key(0), r.Values[0], r.Condition, ttl)
		if c == CodeOK {
			m.stats[st+"sets"]++
		}
		return resp(c, "")
	case pb.Op_OP_DELETE:
		if m.get(key(0)) == nil {
			return &pb.Response{Code: pb.Code_CODE_NOT_FOUND}
		}
		delete(m.data, key(0))
		return &pb.Response{Count: 1}
	case pb.Op_OP_EXPIRE:
		e := m.get(key(0))
		if e == nil {
			return resp(CodeNotFound, "")
		}
		e.exp = m.expiry(r.TtlMs)
		return &pb.Response{Count: 1}
	case pb.Op_OP_MGET:
		out := &pb.Response{Results: make([]*pb.KeyResult, nk)}
		for i := range r.Keys {
			e := m.get(key(i))
			if e == nil || e.lease != "" {
				m.stats[st+"misses"]++
				out.Results[i] = &pb.KeyResult{Code: pb.Code_CODE_NOT_FOUND}
			} else {
				m.stats[st+"hits"]++
				out.Results[i] = &pb.KeyResult{Value: cp(e.val)}
			}
		}
		return out
	case pb.Op_OP_MSET:
		out := &pb.Response{Results: make([]*pb.KeyResult, nk)}
		for i := range r.Keys {
			ttl := effTTL
			if len(r.TtlsMs) > 0 && r.TtlsMs[i] != 0 {
				ttl = r.TtlsMs[i]
			}
			c := m.setOne(key(i), r.Values[i], r.Condition, ttl)
			if c == CodeOK {
				m.stats[st+"sets"]++
			}
			out.Results[i] = &pb.KeyResult{Code: pb.Code(c)}
		}
		return out
	case pb.Op_OP_MDELETE:
		out := &pb.Response{Results: make([]*pb.KeyResult, nk)}
		for i := range r.Keys {
			if m.get(key(i)) == nil {
				out.Results[i] = &pb.KeyResult{Code: pb.Code_CODE_NOT_FOUND}
				continue
			}
			delete(m.data, key(i))
			out.Count++
			out.Results[i] = &pb.KeyResult{}
		}
		return out
	case pb.Op_OP_INVALIDATE:
		match := globEscape(pol.Prefix) + string(r.Pattern)
		var n int64
		for k := range m.data {
			if m.get(k) != nil && globMatch(match, k) {
				delete(m.data, k)
				n++
			}
		}
		m.stats[st+"invalidated"] += uint64(n)
		return &pb.Response{Count: n}
	case pb.Op_OP_GET_OR_LEASE:
		k := key(0)
		e := m.get(k)
		if e == nil {
			tok := make([]byte, 16)
			_, _ = rand.Read(tok)
			lease := hex.EncodeToString(tok)
			ttl := r.TtlMs
			if ttl == 0 {
				ttl = 10000
			}
			m.data[k] = &entry{lease: lease, exp: m.expiry(ttl)}
			m.stats[st+"misses"]++
			m.stats[st+"lease_grants"]++
			return &pb.Response{Code: pb.Code_CODE_LEASE_GRANTED, Lease: []byte(lease)}
		}
		if e.lease != "" {
			m.stats[st+"lease_waits"]++
			wait := uint32(100)
			if !e.exp.IsZero() {
				if left := e.exp.Sub(m.now()); left < 100*time.Millisecond {
					wait = uint32(max(1, left/time.Millisecond))
				}
			}
			return &pb.Response{Code: pb.Code_CODE_LEASE_WAIT, Message: "another caller holds the lease", RetryAfterMs: wait}
		}
		m.stats[st+"hits"]++
		return &pb.Response{Value: cp(e.val), Version: e.version}
	case pb.Op_OP_SET_WITH_LEASE:
		k := key(0)
		e := m.get(k)
		if e == nil || e.lease == "" || e.lease != string(r.Lease) {
			m.stats[st+"lease_rejects"]++
			return resp(CodeLeaseInvalid, "the key does not hold this lease")
		}
		m.data[k] = &entry{val: cp(r.Values[0]), exp: m.expiry(effTTL)}
		m.stats[st+"sets"]++
		return &pb.Response{}
	case pb.Op_OP_SET_VERSIONED:
		k := key(0)
		var cur uint64
		if e := m.get(k); e != nil && e.lease == "" {
			cur = e.version
		}
		if cur != r.Version {
			m.stats[st+"version_conflicts"]++
			return &pb.Response{Code: pb.Code_CODE_VERSION_CONFLICT, Message: "version conflict", Version: cur}
		}
		m.data[k] = &entry{val: cp(r.Values[0]), version: r.Version + 1, exp: m.expiry(effTTL)}
		m.stats[st+"sets"]++
		return &pb.Response{Version: r.Version + 1}
	}
	return resp(CodeUnknownOp, "unknown op")
}

func (m *memory) setOne(k string, v []byte, cond pb.Condition, ttl uint64) Code {
	exists := m.get(k) != nil
	if (cond == pb.Condition_COND_NX && exists) || (cond == pb.Condition_COND_XX && !exists) {
		return CodeNotApplied
	}
	m.data[k] = &entry{val: cp(v), exp: m.expiry(ttl)}
	return CodeOK
}

// keysFor is used by tests: the Redis keys the fake holds that match glob.
func (m *memory) keysFor(glob string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.data {
		if m.get(k) != nil && globMatch(glob, k) {
			out = append(out, k)
		}
	}
	return out
}
