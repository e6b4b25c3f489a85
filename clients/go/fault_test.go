package slotgate

// Fault injection against a scripted in-process slotgate peer (plaintext
// protocol, no Redis involved): out-of-order replies, bad and oversize
// server frames, SHUTTING_DOWN resends, lost connections, a silent proxy,
// max_inflight, local limit checks, reconnecting after refusals.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
	"google.golang.org/protobuf/proto"
)

type peerConn struct {
	n   int // 1-based connection number
	nc  net.Conn
	wmu sync.Mutex
}

func (pc *peerConn) sendRaw(b []byte) {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	_, _ = pc.nc.Write(b)
}

func (pc *peerConn) send(m *pb.ServerMessage) {
	body, _ := proto.Marshal(m)
	pc.sendRaw(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
}

func (pc *peerConn) reply(r *pb.Response) {
	pc.send(&pb.ServerMessage{Msg: &pb.ServerMessage_Response{Response: r}})
}

func (pc *peerConn) connError(c Code, msg string) {
	pc.send(&pb.ServerMessage{Msg: &pb.ServerMessage_Error{Error: &pb.ConnectionError{Code: pb.Code(c), Message: msg}}})
}

type peer struct {
	t       *testing.T
	ln      net.Listener
	limits  *pb.Limits
	hello   func(pc *peerConn) bool // false: refuse (it sent an error)
	handle  func(pc *peerConn, r *pb.Request)
	nconns  atomic.Int32
	reqs    atomic.Int32
	mu      sync.Mutex
	byConn  map[int][]*pb.Request
	wg      sync.WaitGroup
	closing atomic.Bool
}

func newPeer(t *testing.T, ln net.Listener, handle func(pc *peerConn, r *pb.Request)) *peer {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	p := &peer{t: t, ln: ln, limits: DefaultLimits(), handle: handle, byConn: map[int][]*pb.Request{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.closing.Store(true)
	p.ln.Close()
	p.wg.Wait()
}

func (p *peer) addr() string { return p.ln.Addr().String() }

func (p *peer) accept() {
	defer p.wg.Done()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		conns = append(conns, nc)
		pc := &peerConn{n: int(p.nconns.Add(1)), nc: nc}
		p.wg.Add(1)
		go p.serve(pc)
	}
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(r, body)
	return body, err
}

func (p *peer) serve(pc *peerConn) {
	defer p.wg.Done()
	defer pc.nc.Close()
	body, err := readFrame(pc.nc)
	if err != nil {
		return
	}
	m := &pb.ClientMessage{}
	if proto.Unmarshal(body, m) != nil || m.GetHello() == nil {
		return
	}
	if p.hello != nil && !p.hello(pc) {
		return
	}
	pc.send(&pb.ServerMessage{Msg: &pb.ServerMessage_HelloReply{HelloReply: &pb.HelloReply{
		ProtocolVersion: 1, ServerVersion: "peer", Limits: p.limits}}})
	for {
		body, err := readFrame(pc.nc)
		if err != nil {
			return
		}
		m := &pb.ClientMessage{}
		if err := proto.Unmarshal(body, m); err != nil || m.GetRequest() == nil {
			p.t.Errorf("peer: bad client frame %x", body)
			return
		}
		p.reqs.Add(1)
		p.mu.Lock()
		p.byConn[pc.n] = append(p.byConn[pc.n], m.GetRequest())
		p.mu.Unlock()
		p.handle(pc, m.GetRequest())
	}
}

func (p *peer) requests(conn int) []*pb.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pb.Request(nil), p.byConn[conn]...)
}

func echo(pc *peerConn, r *pb.Request) {
	v := []byte{}
	if len(r.Keys) > 0 {
		v = r.Keys[0]
	}
	pc.reply(&pb.Response{Id: r.Id, Value: v})
}

func peerClient(p *peer, mod func(*Options)) *Client {
	opt := &Options{Addr: p.addr(), PoolSize: 1, MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond}
	if mod != nil {
		mod(opt)
	}
	return NewClient(opt)
}

// waitFor polls cond (bounded) for state the test cannot be told about.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func concurrentGets(c *Client, n int, prefix string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := fmt.Sprintf("%s%d", prefix, i)
			v, err := c.Get(context.Background(), k)
			if err == nil && string(v) != k {
				err = fmt.Errorf("key %s got value %q", k, v)
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	return errs
}

func TestOutOfOrderReplies(t *testing.T) {
	const n = 20
	var mu sync.Mutex
	var held []*pb.Request
	p := newPeer(t, nil, func(pc *peerConn, r *pb.Request) {
		mu.Lock()
		held = append(held, r)
		all := len(held) == n
		mu.Unlock()
		if all { // answer in reverse order of arrival
			for i := n - 1; i >= 0; i-- {
				echo(pc, held[i])
			}
		}
	})
	c := peerClient(p, nil)
	defer c.Close()
	for _, err := range concurrentGets(c, n, "k") {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint64]bool{}
	for _, r := range p.requests(1) {
		if seen[r.Id] || r.Id == 0 {
			t.Fatalf("id %d reused or zero", r.Id)
		}
		seen[r.Id] = true
	}
}

// A frame the client cannot accept fails the connection and every call
// pending on it with a typed error; the client then reconnects.
func TestBadServerFrames(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"oversize", binary.BigEndian.AppendUint32(nil, 2<<20), ErrFrameTooLarge},
		{"undecodable", []byte{0, 0, 0, 3, 0x12, 0xff, 0xff}, ErrBadFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pending atomic.Int32
			p := newPeer(t, nil, func(pc *peerConn, r *pb.Request) {
				if pc.n > 1 {
					echo(pc, r)
					return
				}
				if pending.Add(1) == 3 {
					pc.sendRaw(tc.frame)
				}
			})
			c := peerClient(p, func(o *Options) { o.MaxFrameBytes = 1 << 20 })
			defer c.Close()
			for _, err := range concurrentGets(c, 3, "k") {
				var se *Error
				if !errors.Is(err, tc.want) || !errors.As(err, &se) || !se.Local {
					t.Fatalf("got %v, want local %v", err, tc.want)
				}
			}
			if v, err := c.Get(context.Background(), "after"); err != nil || string(v) != "after" {
				t.Fatalf("after reconnect: %q %v", v, err)
			}
			if p.nconns.Load() != 2 {
				t.Fatalf("%d connections, want 2", p.nconns.Load())
			}
		})
	}
}

// After SHUTTING_DOWN the unanswered requests were never executed: they are
// resent on a new connection and the callers never see the error.
func TestShuttingDownResends(t *testing.T) {
	var first atomic.Int32
	p := newPeer(t, nil, func(pc *peerConn, r *pb.Request) {
		if pc.n == 1 {
			if first.Add(1) == 5 {
				pc.connError(CodeShuttingDown, "server is shutting down")
				pc.nc.Close()
			}
			return
		}
		echo(pc, r)
	})
	c := peerClient(p, nil)
	defer c.Close()
	for _, err := range concurrentGets(c, 5, "s") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(p.requests(1)); got != 5 {
		t.Fatalf("first connection saw %d requests", got)
	}
	if got := len(p.requests(2)); got != 5 {
		t.Fatalf("second connection saw %d requests, want the 5 resent", got)
	}
	if st := c.PoolStats(); st.Resends != 5 || st.ConnFailures != 1 || st.Dials != 2 {
		t.Fatalf("pool stats %+v", st)
	}
}

// A connection lost with requests written and unanswered: their outcome is
// unknown, so they fail with CLIENT_IO and are not resent.
func TestConnectionLostNotResent(t *testing.T) {
	p := newPeer(t, nil, func(pc *peerConn, r *pb.Request) {
		if pc.n == 1 {
			pc.nc.Close()
			return
		}
		echo(pc, r)
	})
	c := peerClient(p, nil)
	defer c.Close()
	err := c.Set(context.Background(), "k", []byte("v"), nil)
	if !errors.Is(err, ErrClientIO) {
		t.Fatalf("got %v, want CLIENT_IO", err)
	}
	if v, err := c.Get(context.Background(), "next"); err != nil || string(v) != "next" {
		t.Fatalf("after reconnect: %q %v", v, err)
	}
	for _, r := range p.requests(2) {
		if r.Op == pb.Op_OP_SET {
			t.Fatal("the SET whose outcome was unknown was resent")
		}
	}
}

// A proxy that accepts and never answers: calls fail with TIMEOUT by their
// own deadline.
func TestSilentProxyTimesOut(t *testing.T) {
	p := newPeer(t, nil, func(*peerConn, *pb.Request) {})
	c := peerClient(p, func(o *Options) { o.TimeoutMargin = 50 * time.Millisecond })
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want TIMEOUT", err)
	}
	_, err := c.WithTimeout(100*time.Millisecond).Get(context.Background(), "k")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want TIMEOUT", err)
	}
	if r := p.requests(1); len(r) < 2 || r[1].DeadlineMs != 100 {
		t.Fatalf("deadline_ms not sent: %v", r)
	}
}

func TestCanceledContext(t *testing.T) {
	p := newPeer(t, nil, func(*peerConn, *pb.Request) {})
	c := peerClient(p, nil)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "request", func() bool { return p.reqs.Load() == 1 })
		cancel()
	}()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestMaxInflightRespected(t *testing.T) {
	var out, peak atomic.Int32
	p := newPeer(t, nil, func(pc *peerConn, r *pb.Request) {
		n := out.Add(1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		time.AfterFunc(2*time.Millisecond, func() { out.Add(-1); echo(pc, r) })
	})
	p.limits = &pb.Limits{MaxInflight: 4}
	c := peerClient(p, nil)
	defer c.Close()
	for _, err := range concurrentGets(c, 60, "i") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() > 4 || peak.Load() < 2 {
		t.Fatalf("peak in flight %d, want 2..4", peak.Load())
	}
}

func TestLocalLimitChecks(t *testing.T) {
	p := newPeer(t, nil, echo)
	p.limits = &pb.Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatchKeys: 2, MaxBatchBytes: 20, MaxFrameBytes: 1000}
	c := peerClient(p, nil)
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		err  error
		want error
	}{
		{func() error { _, err := c.Get(ctx, "123456789"); return err }(), ErrKeyTooLarge},
		{c.Set(ctx, "k", make([]byte, 17), nil), ErrValueTooLarge},
		{func() error { _, err := c.MGet(ctx, "a", "b", "c"); return err }(), ErrBatchTooLarge},
		{func() error {
			_, err := c.MSet(ctx, []Item{{Key: "a", Value: make([]byte, 10)}, {Key: "b", Value: make([]byte, 10)}}, nil)
			return err
		}(), ErrBatchTooLarge},
		{func() error { _, err := c.Invalidate(ctx, "*123456789"); return err }(), ErrKeyTooLarge},
		{c.Set(ctx, "k", nil, &SetOptions{NX: true, XX: true}), ErrInvalidArgument},
	}
	for i, ch := range checks {
		var se *Error
		if !errors.Is(ch.err, ch.want) || !errors.As(ch.err, &se) || !se.Local {
			t.Errorf("check %d: got %v, want local %v", i, ch.err, ch.want)
		}
	}
	if n := p.reqs.Load(); n != 1 {
		t.Fatalf("server saw %d requests, want only the PING", n)
	}
}

// Refused dials are retried with backoff within the call's deadline: a
// server that comes up later is reached.
func TestReconnectAfterRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var dials atomic.Int32
	c := NewClient(&Options{Addr: addr, MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
		Dialer: func(ctx context.Context, network, a string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		}})
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- c.Ping(ctx)
	}()
	waitFor(t, "two refused dials", func() bool { return dials.Load() >= 2 })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	newPeer(t, ln2, echo)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeRefusalFailsAtOnce(t *testing.T) {
	p := newPeer(t, nil, echo)
	p.hello = func(pc *peerConn) bool { pc.connError(CodeAuthFailed, "authentication failed"); return false }
	c := peerClient(p, nil)
	defer c.Close()
	// With an hour's deadline, a client that kept retrying instead of
	// failing at once would hang the test.
	err := c.WithTimeout(time.Hour).Ping(context.Background())
	var se *Error
	if !errors.Is(err, ErrAuthFailed) || !errors.As(err, &se) || se.Local || se.Retriable {
		t.Fatalf("got %v, want AUTH_FAILED", err)
	}
}

func TestCloseRefusesNewCalls(t *testing.T) {
	p := newPeer(t, nil, echo)
	c := peerClient(p, nil)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}
