package slotgate

// pool owns PoolSize connection slots. Each slot holds at most one live
// conn and dials a new one when asked after a failure, with exponential
// backoff and jitter between failed attempts. Callers wait for a slot's dial
// within their own deadline.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
)

type pool struct {
	opt    Options
	slots  []*slot
	rr     atomic.Uint32
	limits atomic.Pointer[pb.Limits] // from the latest HelloReply

	stats struct {
		dials, dialErrors, connFailures, resends, timeouts atomic.Uint64
	}

	active   atomic.Int64 // calls in progress
	closing  atomic.Bool
	drained  chan struct{}
	closedCh chan struct{}
	closeMu  sync.Mutex
}

type slot struct {
	p        *pool
	mu       sync.Mutex
	cur      atomic.Pointer[conn]
	dialing  bool
	ready    chan struct{} // closed when the current dial attempt ends
	lastErr  error
	fatal    bool // lastErr will not go away by retrying
	failures int
	nextDial time.Time
}

func newPool(opt Options) *pool {
	p := &pool{opt: opt, drained: make(chan struct{}, 1), closedCh: make(chan struct{})}
	for i := 0; i < opt.PoolSize; i++ {
		p.slots = append(p.slots, &slot{p: p})
	}
	return p
}

func (s *slot) live() *conn {
	if cn := s.cur.Load(); cn != nil && !cn.isDead() {
		return cn
	}
	return nil
}

// get returns a live connection: the next slot in turn, else any live one
// (and that slot starts redialing), else it waits for the slot's dial.
func (p *pool) get(ctx context.Context, deadline time.Time) (*conn, error) {
	n := uint32(len(p.slots))
	i := p.rr.Add(1) % n
	if cn := p.slots[i].live(); cn != nil {
		return cn, nil
	}
	for j := uint32(1); j < n; j++ {
		if cn := p.slots[(i+j)%n].live(); cn != nil {
			p.slots[i].kick()
			return cn, nil
		}
	}
	return p.slots[i].wait(ctx, deadline)
}

func (s *slot) kick() {
	s.mu.Lock()
	if !s.dialing && s.live() == nil && !s.p.closing.Load() {
		s.startDialLocked()
	}
	s.mu.Unlock()
}

func (s *slot) startDialLocked() {
	s.dialing = true
	s.ready = make(chan struct{})
	go s.dial(time.Until(s.nextDial))
}

func (s *slot) wait(ctx context.Context, deadline time.Time) (*conn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if cn := s.live(); cn != nil {
			s.mu.Unlock()
			return cn, nil
		}
		if s.p.closing.Load() {
			s.mu.Unlock()
			return nil, errClosed()
		}
		if !s.dialing {
			s.startDialLocked()
		}
		ready := s.ready
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-ready:
			s.mu.Lock()
			cn, err, fatal := s.live(), s.lastErr, s.fatal
			s.mu.Unlock()
			if cn != nil {
				return cn, nil
			}
			if fatal {
				return nil, err
			}
		case <-timer.C:
			s.mu.Lock()
			err := s.lastErr
			s.mu.Unlock()
			e := localError(CodeTimeout, "deadline passed waiting for a connection to %s", s.p.opt.Addr)
			if err != nil {
				// Text only: errors.Is must not see the dial error's code.
				e.Message += " (last attempt: " + err.Error() + ")"
			}
			return nil, e
		case <-ctx.Done():
			return nil, ctxError(ctx)
		case <-s.p.closedCh:
			return nil, errClosed()
		}
	}
}

func (s *slot) dial(delay time.Duration) {
	p := s.p
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.closedCh:
			t.Stop()
		}
	}
	var cn *conn
	var err error
	if p.closing.Load() {
		err = errClosed()
	} else {
		p.stats.dials.Add(1)
		cn, err = p.connect(s)
		if err != nil {
			p.stats.dialErrors.Add(1)
		}
	}
	s.mu.Lock()
	if err == nil {
		s.failures = 0
		s.lastErr = nil
		s.fatal = false
		s.cur.Store(cn)
	} else {
		s.failures++
		s.lastErr = err
		s.fatal = isFatal(err)
		s.nextDial = time.Now().Add(p.backoff(s.failures))
	}
	s.dialing = false
	close(s.ready)
	s.mu.Unlock()
	if cn != nil && p.closing.Load() {
		cn.close()
	}
}

// backoff: exponential from MinRetryBackoff, capped at MaxRetryBackoff,
// with "equal jitter" (half fixed, half random) so that many clients
// restarted together do not reconnect in lockstep.
func (p *pool) backoff(failures int) time.Duration {
	d := p.opt.MinRetryBackoff
	for i := 1; i < failures && d < p.opt.MaxRetryBackoff; i++ {
		d *= 2
	}
	if d > p.opt.MaxRetryBackoff {
		d = p.opt.MaxRetryBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// connFailed is told by a conn that it failed; the slot redials on demand,
// not before a short jittered pause (a server that accepts and closes at
// once must not be hammered).
func (p *pool) connFailed(c *conn, _ *Error) {
	p.stats.connFailures.Add(1)
	for _, s := range p.slots {
		if s.cur.Load() == c {
			s.mu.Lock()
			s.nextDial = time.Now().Add(p.backoff(1))
			s.mu.Unlock()
		}
	}
}

func isFatal(err error) bool {
	var e *Error
	if errors.As(err, &e) && !e.Local {
		switch e.Code {
		case CodeBadFrame, CodeFrameTooLarge, CodeHandshakeReq, CodeUnsupportedVer, CodeAuthFailed:
			return true
		}
		return false
	}
	if e != nil && e.Code == CodeClientClosed {
		return true
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// connect dials, runs TLS and the Hello exchange within DialTimeout.
func (p *pool) connect(s *slot) (*conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opt.DialTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.closedCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	var nc net.Conn
	var err error
	if p.opt.Dialer != nil {
		nc, err = p.opt.Dialer(ctx, "tcp", p.opt.Addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", p.opt.Addr)
	}
	if err != nil {
		return nil, ioError("dial "+p.opt.Addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if p.opt.TLSConfig != nil {
		tc := tls.Client(nc, p.opt.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, ioError("TLS handshake with "+p.opt.Addr, err)
		}
		nc = tc
	}
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	hello := &pb.Hello{ProtocolVersion: 1, ClientName: p.opt.ClientName}
	if p.opt.Token != "" {
		hello.AuthToken = []byte(p.opt.Token)
	}
	frame := AppendClientFrame(nil, &pb.ClientMessage{Msg: &pb.ClientMessage_Hello{Hello: hello}})
	if _, err := nc.Write(frame); err != nil {
		nc.Close()
		return nil, ioError("sending Hello", err)
	}
	br := bufio.NewReaderSize(nc, 32<<10)
	m, err := readServerFrame(br, p.opt.MaxFrameBytes)
	if err != nil {
		nc.Close()
		return nil, err
	}
	switch v := m.Msg.(type) {
	case *pb.ServerMessage_HelloReply:
		_ = nc.SetDeadline(time.Time{})
		if l := v.HelloReply.GetLimits(); l != nil {
			p.limits.Store(l)
		}
		return newConn(p, nc, br, v.HelloReply), nil
	case *pb.ServerMessage_Error:
		nc.Close()
		return nil, newError(Code(v.Error.GetCode()), v.Error.GetMessage())
	}
	nc.Close()
	return nil, localError(CodeBadFrame, "server answered Hello with neither HelloReply nor ConnectionError")
}

func readServerFrame(br *bufio.Reader, max int) (*pb.ServerMessage, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, ioError("reading the server's answer to Hello", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, localError(CodeFrameTooLarge, "server frame of %d bytes exceeds the client cap of %d", n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, ioError("reading the server's answer to Hello", err)
	}
	m, err := DecodeServerMessage(body)
	if err != nil {
		return nil, localError(CodeBadFrame, "%v", err)
	}
	return m, nil
}

// close stops new calls, waits for calls in progress to settle (each ends by
// its own deadline at the latest), then closes every connection.
func (p *pool) close() {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closing.Swap(true) {
		return
	}
	for p.active.Load() > 0 {
		<-p.drained
	}
	close(p.closedCh)
	for _, s := range p.slots {
		if cn := s.cur.Load(); cn != nil {
			cn.close()
		}
	}
}

func (p *pool) enter() bool {
	p.active.Add(1)
	if p.closing.Load() {
		p.exit()
		return false
	}
	return true
}

func (p *pool) exit() {
	if p.active.Add(-1) == 0 && p.closing.Load() {
		select {
		case p.drained <- struct{}{}:
		default:
		}
	}
}

func errClosed() *Error {
	return &Error{Code: CodeClientClosed, Message: "client closed", Local: true}
}

func ctxError(ctx context.Context) *Error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeTimeout, Message: "context deadline exceeded", Retriable: true, Local: true, cause: err}
	}
	return &Error{Code: CodeCanceled, Message: "context canceled", Local: true, cause: err}
}
