package slotgate

import (
	"context"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
	"google.golang.org/protobuf/proto"
)

// Client is a goroutine-safe slotgate client: a small pool of connections,
// each multiplexing many requests by id. Create it with NewClient and share
// it; Keyspace and WithTimeout return views that share the same pool.
type Client struct {
	p        *pool
	mem      *memHandle // the in-memory fake (NewMemoryClient) instead of p
	keyspace string
	timeout  time.Duration
}

// NewClient returns a client for opt. It connects lazily, on the first call
// (use Ping to connect eagerly).
func NewClient(opt *Options) *Client {
	o := opt.withDefaults()
	return &Client{p: newPool(o), keyspace: o.Keyspace, timeout: o.Timeout}
}

// Keyspace returns a view of c whose calls use keyspace name ("" is the
// default keyspace; "default" is not an alias for it). It shares c's
// connections: closing either closes both.
func (c *Client) Keyspace(name string) *Client {
	cc := *c
	cc.keyspace = name
	return &cc
}

// WithTimeout returns a view of c whose calls carry deadline d (sent as
// deadline_ms; the client gives up at d plus Options.TimeoutMargin, or at
// the context's deadline if sooner). 0 restores the server default.
func (c *Client) WithTimeout(d time.Duration) *Client {
	cc := *c
	cc.timeout = d
	return &cc
}

// NewPeer returns a new, independent client to the same server: for a
// real client, NewClient with the same options (its own connections); for
// the in-memory fake, another client on the same in-memory store (as a
// second process would see it). It keeps c's keyspace and timeout.
func (c *Client) NewPeer() *Client {
	if c.mem != nil {
		return &Client{mem: &memHandle{m: c.mem.m}, keyspace: c.keyspace, timeout: c.timeout}
	}
	return &Client{p: newPool(c.p.opt), keyspace: c.keyspace, timeout: c.timeout}
}

// PoolStats are counters of a client's connection pool since NewClient.
type PoolStats struct {
	Conns        int    // live connections now
	Dials        uint64 // connection attempts
	DialErrors   uint64 // attempts that failed (dial, TLS or Hello)
	ConnFailures uint64 // live connections that failed (closed, I/O, ConnectionError)
	Resends      uint64 // requests resent because the server never executed them
	Timeouts     uint64 // calls that ended with a local TIMEOUT
}

// PoolStats returns the pool's counters (zero for the in-memory fake).
func (c *Client) PoolStats() PoolStats {
	if c.p == nil {
		return PoolStats{}
	}
	p := c.p
	st := PoolStats{Dials: p.stats.dials.Load(), DialErrors: p.stats.dialErrors.Load(),
		ConnFailures: p.stats.connFailures.Load(), Resends: p.stats.resends.Load(), Timeouts: p.stats.timeouts.Load()}
	for _, s := range p.slots {
		if s.live() != nil {
			st.Conns++
		}
	}
	return st
}

// KeyspaceName is the keyspace this view uses.
func (c *Client) KeyspaceName() string { return c.keyspace }

// Close stops new calls, lets calls in progress finish (each by its own
// deadline at the latest) and closes the connections.
func (c *Client) Close() error {
	if c.mem != nil {
		c.mem.closed.Store(true)
		return nil
	}
	c.p.close()
	return nil
}

// Limits returns the limits of the latest HelloReply, or nil before the
// first connection.
func (c *Client) Limits() *pb.Limits {
	if c.mem != nil {
		return c.mem.m.limits
	}
	return c.p.limits.Load()
}

// Do sends req (its id is assigned by the client) with no local validation
// and returns the server's response whatever its code. The error is non-nil
// only when no response was received (deadline, connection failure, closed
// client, canceled context).
func (c *Client) Do(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	return c.roundTrip(ctx, req, false)
}

func ms(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	m := uint64((d + time.Millisecond - 1) / time.Millisecond)
	return m
}

// roundTrip sends req and waits for its response. It sets deadline_ms (if
// req has none) from the view's timeout and the context's deadline, and
// resends transparently a request the server certainly never executed.
func (c *Client) roundTrip(ctx context.Context, req *pb.Request, validate bool) (*pb.Response, error) {
	if c.mem != nil {
		return c.mem.do(ctx, req, validate)
	}
	p := c.p
	if !p.enter() {
		return nil, errClosed()
	}
	defer p.exit()
	now := time.Now()
	var deadline time.Time
	explicit := req.DeadlineMs != 0
	if !explicit && c.timeout > 0 {
		req.DeadlineMs = uint32(min(ms(c.timeout), 1<<31))
	}
	if req.DeadlineMs != 0 {
		deadline = now.Add(time.Duration(req.DeadlineMs)*time.Millisecond + p.opt.TimeoutMargin)
	}
	ctxDl, hasDl := ctx.Deadline()
	if hasDl {
		rem := ctxDl.Sub(now)
		if rem <= 0 {
			return nil, ctxError(ctx)
		}
		if !explicit && (req.DeadlineMs == 0 || rem < time.Duration(req.DeadlineMs)*time.Millisecond) {
			req.DeadlineMs = uint32(min(ms(rem), 1<<31))
		}
		if deadline.IsZero() || ctxDl.Before(deadline) {
			deadline = ctxDl
		}
	}
	if deadline.IsZero() {
		deadline = now.Add(p.defaultDeadline(req.Op) + p.opt.TimeoutMargin)
	}
	for {
		cn, err := p.get(ctx, deadline)
		if err != nil {
			return nil, err
		}
		if validate {
			if err := checkLimits(req, cn.limits); err != nil {
				return nil, err
			}
		}
		cl := &call{req: req, done: make(chan struct{}, 1), deadline: deadline}
		if err := cn.acquire(cl, ctx.Done()); err != nil {
			if err == errConnGone {
				continue
			}
			if err == errCanceledWait {
				return nil, ctxError(ctx)
			}
			return nil, err
		}
		if err := cn.send(cl); err != nil {
			continue // closed between get and send: never sent
		}
		select {
		case <-cl.done:
		case <-ctx.Done():
			if cn.abandon(cl) {
				return nil, ctxError(ctx)
			}
			<-cl.done
		}
		if cl.resend {
			p.stats.resends.Add(1)
			// The old request may still be read by the failed
			// connection's writer: send a copy with the remaining time.
			req = proto.Clone(req).(*pb.Request)
			if !explicit && req.DeadlineMs != 0 {
				rem := time.Until(deadline) - p.opt.TimeoutMargin
				if hasDl && deadline.Equal(ctxDl) {
					rem = time.Until(ctxDl)
				}
				if rem < time.Millisecond {
					rem = time.Millisecond
				}
				req.DeadlineMs = uint32(min(ms(rem), uint64(req.DeadlineMs)))
			}
			continue
		}
		if cl.err != nil {
			if CodeOf(cl.err) == CodeTimeout {
				p.stats.timeouts.Add(1)
			}
			return nil, cl.err
		}
		return cl.resp, nil
	}
}

func (p *pool) defaultDeadline(op pb.Op) time.Duration {
	if op == pb.Op_OP_INVALIDATE {
		return 30 * time.Second // limits.max_deadline_ms default: not announced
	}
	if l := p.limits.Load(); l != nil && l.GetDefaultDeadlineMs() > 0 {
		return time.Duration(l.GetDefaultDeadlineMs()) * time.Millisecond
	}
	return time.Second
}

// checkLimits applies the announced limits before anything is sent
// (PROTOCOL.md section 12 item 6), in the server's validation order. A zero
// limit is not enforced.
func checkLimits(r *pb.Request, l *pb.Limits) error {
	switch r.Op {
	case pb.Op_OP_MGET, pb.Op_OP_MSET, pb.Op_OP_MDELETE:
		if mk := l.GetMaxBatchKeys(); mk > 0 && len(r.Keys) > int(mk) {
			return localError(CodeBatchTooLarge, "%d keys, max_batch_keys is %d", len(r.Keys), mk)
		}
	}
	total := 0
	if mk := int(l.GetMaxKeyBytes()); mk > 0 {
		for i, k := range r.Keys {
			if len(k) > mk {
				return localError(CodeKeyTooLarge, "key %d is %d bytes, max_key_bytes is %d", i, len(k), mk)
			}
		}
		if len(r.Pattern) > mk {
			return localError(CodeKeyTooLarge, "pattern is %d bytes, max_key_bytes is %d", len(r.Pattern), mk)
		}
	}
	if mv := int(l.GetMaxValueBytes()); mv > 0 {
		for i, v := range r.Values {
			if len(v) > mv {
				return localError(CodeValueTooLarge, "value %d is %d bytes, max_value_bytes is %d", i, len(v), mv)
			}
		}
	}
	for _, k := range r.Keys {
		total += len(k)
	}
	for _, v := range r.Values {
		total += len(v)
	}
	if mb := int(l.GetMaxBatchBytes()); mb > 0 && len(r.Keys) > 1 && total > mb {
		return localError(CodeBatchTooLarge, "%d key and value bytes, max_batch_bytes is %d", total, mb)
	}
	// The frame: only computed when it could come near the limit.
	if mf := int(l.GetMaxFrameBytes()); mf > 0 && total+len(r.Pattern)+len(r.Lease)+64+16*len(r.Keys)+16*len(r.Values)+10*len(r.TtlsMs) > mf {
		if n := proto.Size(r) + 6; n > mf {
			return localError(CodeFrameTooLarge, "request frame of %d bytes, max_frame_bytes is %d", n, mf)
		}
	}
	return nil
}
