package slotgate

import (
	"context"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
)

// SetOptions are the optional parts of a write. TTL 0 uses the keyspace's
// default TTL. NX: only if the key does not exist; XX: only if it does (a
// condition not met gives ErrNotApplied).
type SetOptions struct {
	TTL time.Duration
	NX  bool
	XX  bool
}

// Item is one MSET entry; TTL 0 uses the call's TTL (then the keyspace's).
type Item struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// KeyResult is the outcome of one key of a batch, in request key order:
// Err is nil (OK), ErrNotFound / ErrNotApplied (answers), or a *Error.
type KeyResult struct {
	Value []byte // MGET hits
	Err   error
}

// Lease is the answer of GetOrLease. Status is CodeOK (Value holds the
// cached value), CodeLeaseGranted (the caller must compute the value and
// store it with SetWithLease(Token)) or CodeLeaseWait (another caller holds
// the lease: call again after RetryAfter).
type Lease struct {
	Status     Code
	Value      []byte
	Version    uint64
	Token      []byte
	RetryAfter time.Duration
}

func (c *Client) req(op pb.Op, keys ...string) *pb.Request {
	r := &pb.Request{Op: op, Keyspace: c.keyspace}
	if len(keys) > 0 {
		r.Keys = make([][]byte, len(keys))
		for i, k := range keys {
			r.Keys[i] = []byte(k)
		}
	}
	return r
}

// exec sends a typed request (with local limit checks) and turns every code
// but those in ok into an error.
func (c *Client) exec(ctx context.Context, r *pb.Request, ok ...Code) (*pb.Response, error) {
	resp, err := c.roundTrip(ctx, r, true)
	if err != nil {
		return nil, err
	}
	code := Code(resp.GetCode())
	if code == CodeOK {
		return resp, nil
	}
	for _, o := range ok {
		if code == o {
			return resp, nil
		}
	}
	return resp, respError(resp)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func applySet(r *pb.Request, opt *SetOptions) error {
	if opt == nil {
		return nil
	}
	if opt.NX && opt.XX {
		return localError(CodeInvalidArgument, "NX and XX together")
	}
	r.TtlMs = ms(opt.TTL)
	if opt.NX {
		r.Condition = pb.Condition_COND_NX
	} else if opt.XX {
		r.Condition = pb.Condition_COND_XX
	}
	return nil
}

// Ping checks the connection (and connects if needed).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.exec(ctx, &pb.Request{Op: pb.Op_OP_PING})
	return err
}

// Get returns the value of key, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	resp, err := c.exec(ctx, c.req(pb.Op_OP_GET, key))
	if err != nil {
		return nil, err
	}
	return nonNil(resp.Value), nil
}

// Set stores value under key. With NX or XX a condition not met gives
// ErrNotApplied.
func (c *Client) Set(ctx context.Context, key string, value []byte, opt *SetOptions) error {
	r := c.req(pb.Op_OP_SET, key)
	r.Values = [][]byte{value}
	if err := applySet(r, opt); err != nil {
		return err
	}
	_, err := c.exec(ctx, r)
	return err
}

// Del removes key; it reports whether the key existed.
func (c *Client) Del(ctx context.Context, key string) (bool, error) {
	resp, err := c.exec(ctx, c.req(pb.Op_OP_DELETE, key), CodeNotFound)
	if err != nil {
		return false, err
	}
	return resp.GetCode() == pb.Code_CODE_OK, nil
}

// Expire sets key's TTL (> 0); it reports whether the key existed.
func (c *Client) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	r := c.req(pb.Op_OP_EXPIRE, key)
	r.TtlMs = ms(ttl)
	resp, err := c.exec(ctx, r, CodeNotFound)
	if err != nil {
		return false, err
	}
	return resp.GetCode() == pb.Code_CODE_OK, nil
}

func keyResults(resp *pb.Response, n int) []KeyResult {
	out := make([]KeyResult, n)
	for i := range out {
		if i >= len(resp.Results) {
			out[i].Err = localError(CodeInternal, "server sent %d results for %d keys", len(resp.Results), n)
			continue
		}
		kr := resp.Results[i]
		switch Code(kr.GetCode()) {
		case CodeOK:
			out[i].Value = nonNil(kr.Value)
		case CodeNotFound:
			out[i].Err = ErrNotFound
		case CodeNotApplied:
			out[i].Err = ErrNotApplied
		default:
			c := Code(kr.GetCode())
			out[i].Err = &Error{Code: c, Message: kr.GetMessage(), Retriable: c.Retriable()}
		}
	}
	return out
}

// MGet reads keys (in one request; they need not share a slot). The result
// has one entry per key, in order.
func (c *Client) MGet(ctx context.Context, keys ...string) ([]KeyResult, error) {
	resp, err := c.exec(ctx, c.req(pb.Op_OP_MGET, keys...))
	if err != nil {
		return nil, err
	}
	return keyResults(resp, len(keys)), nil
}

// MSet writes items (not atomically). opt applies to every item; an item's
// own TTL overrides opt.TTL.
func (c *Client) MSet(ctx context.Context, items []Item, opt *SetOptions) ([]KeyResult, error) {
	r := &pb.Request{Op: pb.Op_OP_MSET, Keyspace: c.keyspace,
		Keys: make([][]byte, len(items)), Values: make([][]byte, len(items))}
	perItem := false
	for i, it := range items {
		r.Keys[i] = []byte(it.Key)
		r.Values[i] = it.Value
		if it.TTL > 0 {
			perItem = true
		}
	}
	if perItem {
		r.TtlsMs = make([]uint64, len(items))
		for i, it := range items {
			r.TtlsMs[i] = ms(it.TTL)
		}
	}
	if err := applySet(r, opt); err != nil {
		return nil, err
	}
	resp, err := c.exec(ctx, r)
	if err != nil {
		return nil, err
	}
	return keyResults(resp, len(items)), nil
}

// MDel removes keys; count is how many existed.
func (c *Client) MDel(ctx context.Context, keys ...string) (count int64, results []KeyResult, err error) {
	resp, err := c.exec(ctx, c.req(pb.Op_OP_MDELETE, keys...))
	if err != nil {
		return 0, nil, err
	}
	return resp.GetCount(), keyResults(resp, len(keys)), nil
}

// Invalidate deletes every key of the keyspace matching the Redis glob
// pattern and returns how many it removed. On failure the *Error's Count
// holds the keys removed before it.
func (c *Client) Invalidate(ctx context.Context, pattern string) (int64, error) {
	r := &pb.Request{Op: pb.Op_OP_INVALIDATE, Keyspace: c.keyspace, Pattern: []byte(pattern)}
	resp, err := c.exec(ctx, r)
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

// GetOrLease reads key; on a miss the server grants this caller a lease of
// leaseTTL (0: the server's 10 s) to fill it. See Lease.
func (c *Client) GetOrLease(ctx context.Context, key string, leaseTTL time.Duration) (*Lease, error) {
	r := c.req(pb.Op_OP_GET_OR_LEASE, key)
	r.TtlMs = ms(leaseTTL)
	resp, err := c.exec(ctx, r, CodeLeaseGranted, CodeLeaseWait)
	if err != nil {
		return nil, err
	}
	l := &Lease{Status: Code(resp.GetCode()), Version: resp.GetVersion(),
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond}
	switch l.Status {
	case CodeOK:
		l.Value = nonNil(resp.Value)
	case CodeLeaseGranted:
		l.Token = resp.Lease
	}
	return l, nil
}

// SetWithLease fills key with value if it still holds the lease token
// (ErrLeaseInvalid otherwise).
func (c *Client) SetWithLease(ctx context.Context, key string, value, lease []byte, ttl time.Duration) error {
	r := c.req(pb.Op_OP_SET_WITH_LEASE, key)
	r.Values = [][]byte{value}
	r.Lease = lease
	r.TtlMs = ms(ttl)
	_, err := c.exec(ctx, r)
	return err
}

// GetVersioned returns key's value and version (0 = unversioned), or
// ErrNotFound.
func (c *Client) GetVersioned(ctx context.Context, key string) ([]byte, uint64, error) {
	resp, err := c.exec(ctx, c.req(pb.Op_OP_GET_VERSIONED, key))
	if err != nil {
		return nil, 0, err
	}
	return nonNil(resp.Value), resp.GetVersion(), nil
}

// SetVersioned stores value if key's version is still version (0: absent or
// unversioned) and returns the new version. On ErrVersionConflict it
// returns the current version (also in the *Error's Version).
func (c *Client) SetVersioned(ctx context.Context, key string, value []byte, version uint64, ttl time.Duration) (uint64, error) {
	r := c.req(pb.Op_OP_SET_VERSIONED, key)
	r.Values = [][]byte{value}
	r.Version = version
	r.TtlMs = ms(ttl)
	resp, err := c.exec(ctx, r)
	if resp != nil {
		return resp.GetVersion(), err
	}
	return 0, err
}

// Stats returns the server's counters (PROTOCOL.md section 5, STATS).
func (c *Client) Stats(ctx context.Context) (map[string]uint64, error) {
	resp, err := c.exec(ctx, &pb.Request{Op: pb.Op_OP_STATS})
	if err != nil {
		return nil, err
	}
	if resp.Stats == nil {
		return map[string]uint64{}, nil
	}
	return resp.Stats, nil
}
