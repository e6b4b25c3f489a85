package slotgate

// conn is one multiplexed connection to slotgate: callers register a call
// (id -> call in pending) and queue it; one writer goroutine sends everything
// queued in one write; one reader goroutine matches responses by id, in any
// order; a sweeper goroutine settles calls whose client-side deadline has
// passed. A connection that fails settles every pending call exactly once:
// resent (never executed by the server) or failed with a typed error.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
)

type call struct {
	req      *pb.Request
	resp     *pb.Response
	err      error
	resend   bool          // settled as "never executed: send again"
	done     chan struct{} // receives once when settled (except by the caller itself)
	deadline time.Time     // client-side deadline
	sentAt   time.Time
	settled  bool // guarded by conn.mu
	written  bool // guarded by conn.mu: handed to the writer
}

type conn struct {
	p             *pool
	nc            net.Conn
	br            *bufio.Reader
	limits        *pb.Limits
	serverVersion string
	slots         chan struct{} // in-flight semaphore, cap = max_inflight

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*call
	queue   []*call
	closed  bool

	spare    []*call // writer only
	wake     chan struct{}
	done     chan struct{} // closed when the connection has failed
	dead     atomic.Bool
	lastRead atomic.Int64 // unix nanos of the last frame read
}

func newConn(p *pool, nc net.Conn, br *bufio.Reader, hr *pb.HelloReply) *conn {
	lim := hr.GetLimits()
	if lim == nil {
		lim = &pb.Limits{}
	}
	inflight := int(lim.GetMaxInflight())
	if inflight <= 0 {
		inflight = 1024
	}
	c := &conn{
		p: p, nc: nc, br: br, limits: lim, serverVersion: hr.GetServerVersion(),
		slots:   make(chan struct{}, inflight),
		pending: make(map[uint64]*call),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.lastRead.Store(time.Now().UnixNano())
	go c.readLoop()
	go c.writeLoop()
	go c.sweepLoop()
	return c
}

func (c *conn) isDead() bool { return c.dead.Load() }

// acquire takes an in-flight slot, waiting until one is free, the deadline,
// or the connection fails (errConnGone: the call was never sent).
func (c *conn) acquire(cl *call, cancel <-chan struct{}) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(cl.deadline))
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-c.done:
		return errConnGone
	case <-t.C:
		return localError(CodeTimeout, "deadline passed waiting for an in-flight slot (max_inflight %d)", cap(c.slots))
	case <-cancel:
		return errCanceledWait
	}
}

// send registers cl under a fresh id and queues it for the writer. The
// caller holds an in-flight slot; on errConnGone it is released here.
func (c *conn) send(cl *call) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errConnGone
	}
	c.nextID++
	cl.req.Id = c.nextID
	cl.sentAt = time.Now()
	c.pending[cl.req.Id] = cl
	c.queue = append(c.queue, cl)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// abandon is the caller giving up (context canceled). It reports false if
// the call was already settled, in which case the caller must read done.
// The call stays in pending, holding its in-flight slot, until its response
// arrives or the connection fails: the server still counts it.
func (c *conn) abandon(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.settled {
		return false
	}
	cl.settled = true
	return true
}

func (c *conn) writeLoop() {
	var buf []byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// Let callers that are about to queue do so first: one write (one
		// syscall, one TLS record) then carries more requests.
		runtime.Gosched()
		c.mu.Lock()
		q := c.queue
		c.queue = c.spare[:0]
		for _, cl := range q {
			cl.written = true
		}
		c.mu.Unlock()
		buf = buf[:0]
		for i, cl := range q {
			buf = appendRequestFrame(buf, cl.req)
			q[i] = nil
		}
		c.spare = q
		if len(buf) == 0 {
			continue
		}
		if _, err := c.nc.Write(buf); err != nil {
			c.fail(ioError("write failed; outcome of unanswered requests unknown", err), false)
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

func (c *conn) readLoop() {
	var hdr [4]byte
	var body []byte
	max := c.p.opt.MaxFrameBytes
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			c.fail(ioError("connection lost; outcome of unanswered requests unknown", err), false)
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if int64(n) > int64(max) {
			c.fail(localError(CodeFrameTooLarge, "server frame of %d bytes exceeds the client cap of %d", n, max), false)
			return
		}
		if int(n) > cap(body) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(c.br, body); err != nil {
			c.fail(ioError("connection lost; outcome of unanswered requests unknown", err), false)
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		m, err := DecodeServerMessage(body)
		if err != nil {
			c.fail(localError(CodeBadFrame, "%v", err), false)
			return
		}
		switch v := m.Msg.(type) {
		case *pb.ServerMessage_Response:
			c.deliver(v.Response)
		case *pb.ServerMessage_Error:
			code := Code(v.Error.GetCode())
			e := newError(code, v.Error.GetMessage())
			c.fail(e, code == CodeShuttingDown)
			return
		default:
			// A HelloReply after the handshake, or a member added to the
			// oneof later: nothing to match, ignored.
		}
		if cap(body) > 1<<20 {
			body = nil
		}
	}
}

func (c *conn) deliver(r *pb.Response) {
	c.mu.Lock()
	cl := c.pending[r.GetId()]
	if cl == nil {
		c.mu.Unlock()
		return // an id we never sent (or already settled by a failure)
	}
	delete(c.pending, r.GetId())
	wasSettled := cl.settled
	cl.settled = true
	c.mu.Unlock()
	<-c.slots
	if !wasSettled {
		cl.resp = r
		cl.done <- struct{}{}
	}
}

// fail closes the connection once and settles every pending call: resent
// if the server certainly never executed it (never written, or the server
// said SHUTTING_DOWN, after which it reads nothing), else failed with err.
func (c *conn) fail(err *Error, shutdown bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.dead.Store(true)
	var settle []*call
	for _, cl := range c.pending {
		if cl.settled {
			continue
		}
		cl.settled = true
		if shutdown || !cl.written {
			cl.resend = true
		} else {
			cl.err = err
		}
		settle = append(settle, cl)
	}
	c.pending = nil
	c.queue = nil
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	for _, cl := range settle {
		cl.done <- struct{}{}
	}
	c.p.connFailed(c, err)
}

// sweepLoop settles calls whose client-side deadline has passed with a
// local TIMEOUT. If a call expired long after it was written and nothing at
// all was read since, the server is not answering (a hung proxy or a dead
// path that TCP has not noticed): the connection is failed so that the pool
// dials a new one.
func (c *conn) sweepLoop() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.sweep(now)
		}
	}
}

func (c *conn) sweep(now time.Time) {
	var expired []*call
	hung := false
	last := c.lastRead.Load()
	c.mu.Lock()
	for _, cl := range c.pending {
		if cl.settled || now.Before(cl.deadline) {
			continue
		}
		cl.settled = true
		expired = append(expired, cl)
		if cl.written && last < cl.sentAt.UnixNano() && now.Sub(cl.sentAt) > time.Second {
			hung = true
		}
	}
	c.mu.Unlock()
	for _, cl := range expired {
		cl.err = localError(CodeTimeout, "no answer within the deadline")
		cl.done <- struct{}{}
	}
	if hung {
		c.fail(ioError("no frame from the server within a call's deadline; connection abandoned", nil), false)
	}
}

func (c *conn) close() {
	c.fail(&Error{Code: CodeClientClosed, Message: "client closed", Local: true}, false)
}

var (
	errConnGone     = fmt.Errorf("connection gone")
	errCanceledWait = fmt.Errorf("canceled")
)
