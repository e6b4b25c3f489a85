package slotgate

// Conformance adapter: runs tests/conformance/scenarios.json (format in
// tests/conformance/README.md) through the public API, one subtest per
// scenario. TestConformance needs the runner's environment (a live slotgate:
// tests/conformance/run.sh -- go test -race -run Conformance ./...) and skips
// without it; TestConformanceFake runs the scenarios whose `requires` is
// empty against the in-memory fake, always.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
	"google.golang.org/protobuf/encoding/protojson"
)

type scenarioFile struct {
	Version   int        `json:"version"`
	Scenarios []scenario `json:"scenarios"`
}

type scenario struct {
	Name     string            `json:"name"`
	Requires []string          `json:"requires"`
	Steps    []json.RawMessage `json:"steps"`
}

func loadScenarios(t *testing.T, path string) []scenario {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f scenarioFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.Version != 1 || len(f.Scenarios) == 0 {
		t.Fatalf("%s: version %d with %d scenarios", path, f.Version, len(f.Scenarios))
	}
	return f.Scenarios
}

func only() map[string]bool {
	s := os.Getenv("SG_CONF_ONLY")
	if s == "" {
		return nil
	}
	m := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		m[strings.TrimSpace(n)] = true
	}
	return m
}

func TestConformance(t *testing.T) {
	path := os.Getenv("SG_CONF_SCENARIOS")
	if path == "" {
		t.Skip("SG_CONF_SCENARIOS not set: run under tests/conformance/run.sh")
	}
	base := envOptions(t)
	sel := only()
	for _, sc := range loadScenarios(t, path) {
		if sel != nil && !sel[sc.Name] {
			continue
		}
		sc := sc
		t.Run(sc.Name, func(t *testing.T) {
			r := &runner{t: t, live: true, ctl: os.Getenv("SG_CONF_CTL"),
				newClient: func(o clientOpts) *Client {
					opt := *base
					if o.token != nil {
						opt.Token = *o.token
					}
					if o.poolSize > 0 {
						opt.PoolSize = o.poolSize
					}
					return NewClient(&opt)
				}}
			r.run(sc)
		})
	}
}

func TestConformanceFake(t *testing.T) {
	path := os.Getenv("SG_CONF_SCENARIOS")
	if path == "" {
		path = "../../tests/conformance/scenarios.json"
	}
	sel := only()
	n := 0
	for _, sc := range loadScenarios(t, path) {
		if len(sc.Requires) != 0 || (sel != nil && !sel[sc.Name]) {
			continue
		}
		n++
		sc := sc
		t.Run(sc.Name, func(t *testing.T) {
			mem := NewMemoryClient(nil)
			r := &runner{t: t, newClient: func(clientOpts) *Client { return mem.NewPeer() }}
			r.run(sc)
		})
	}
	if n == 0 && sel == nil {
		t.Fatal("no scenario without requirements")
	}
}

type clientOpts struct {
	token    *string
	poolSize int
}

type runner struct {
	t         *testing.T
	live      bool
	ctl       string
	newClient func(clientOpts) *Client
	clients   map[string]*Client
	vars      map[string]json.RawMessage
	run_      string
}

func (r *runner) run(sc scenario) {
	tok := make([]byte, 6)
	_, _ = rand.Read(tok)
	r.run_ = "go" + hex.EncodeToString(tok)
	r.vars = map[string]json.RawMessage{}
	r.clients = map[string]*Client{"default": r.newClient(clientOpts{})}
	defer func() {
		for name, c := range r.clients {
			if st := c.PoolStats(); st.Dials > 0 {
				r.t.Logf("client %s: %+v", name, st)
			}
			c.Close()
		}
	}()
	for i, raw := range sc.Steps {
		step := []byte(strings.ReplaceAll(string(raw), "${run}", r.run_))
		if err := r.step(step); err != nil {
			r.t.Fatalf("step %d %s: %v", i, trunc(string(raw)), err)
		}
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

type stepDoc struct {
	Call        string          `json:"call"`
	Client      string          `json:"client"`
	Args        json.RawMessage `json:"args"`
	Expect      json.RawMessage `json:"expect"`
	Save        map[string]string
	NewClient   string          `json:"new_client"`
	Options     json.RawMessage `json:"options"`
	CloseClient string          `json:"close_client"`
	Ctl         string          `json:"ctl"`
	Arg         *string         `json:"arg"`
	Concurrent  json.RawMessage `json:"concurrent"`
	Stampede    json.RawMessage `json:"stampede"`
	Load        json.RawMessage `json:"load"`
	WaitUntil   json.RawMessage `json:"wait_until"`
	TimeoutMs   int             `json:"timeout_ms"`
}

func (r *runner) client(name string) (*Client, error) {
	if name == "" {
		name = "default"
	}
	c := r.clients[name]
	if c == nil {
		return nil, fmt.Errorf("no client %q", name)
	}
	return c, nil
}

func (r *runner) step(raw []byte) error {
	var s stepDoc
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	switch {
	case s.Call != "":
		c, err := r.client(s.Client)
		if err != nil {
			return err
		}
		o := r.call(c, s.Call, s.Args)
		if err := r.check(o, s.Expect); err != nil {
			return err
		}
		for what, name := range s.Save {
			switch what {
			case "lease":
				b, _ := json.Marshal(map[string]string{"hex": hex.EncodeToString(o.lease)})
				r.vars[name] = b
			case "version":
				r.vars[name] = json.RawMessage(strconv.FormatUint(o.version, 10))
			case "value":
				b, _ := json.Marshal(map[string]string{"hex": hex.EncodeToString(o.value)})
				r.vars[name] = b
			case "count":
				r.vars[name] = json.RawMessage(strconv.FormatInt(o.count, 10))
			default:
				return fmt.Errorf("cannot save %q", what)
			}
		}
		return nil
	case s.NewClient != "":
		var o struct {
			Token    *string `json:"token"`
			PoolSize int     `json:"pool_size"`
		}
		if len(s.Options) > 0 {
			if err := json.Unmarshal(s.Options, &o); err != nil {
				return err
			}
		}
		r.clients[s.NewClient] = r.newClient(clientOpts{token: o.Token, poolSize: o.PoolSize})
		return nil
	case s.CloseClient != "":
		c, err := r.client(s.CloseClient)
		if err != nil {
			return err
		}
		delete(r.clients, s.CloseClient)
		return c.Close()
	case s.Ctl != "":
		arg := ""
		if s.Arg != nil {
			arg = *s.Arg
		}
		out, err := r.runCtl(s.Ctl, arg)
		if err != nil {
			return err
		}
		return checkRange(out, s.Expect)
	case s.Concurrent != nil:
		return r.concurrent(s.Concurrent, s.Expect)
	case s.Stampede != nil:
		return r.stampede(s.Stampede, s.Expect)
	case s.Load != nil:
		return r.load(s.Load, s.Expect)
	case s.WaitUntil != nil:
		var inner stepDoc
		if err := json.Unmarshal(s.WaitUntil, &inner); err != nil {
			return err
		}
		c, err := r.client(inner.Client)
		if err != nil {
			return err
		}
		limit := time.Duration(s.TimeoutMs) * time.Millisecond
		if limit == 0 {
			limit = 10 * time.Second
		}
		end := time.Now().Add(limit)
		for {
			o := r.call(c, inner.Call, inner.Args)
			err := r.check(o, inner.Expect)
			if err == nil {
				return nil
			}
			if time.Now().After(end) {
				return fmt.Errorf("not reached within %v: %v", limit, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown step kind")
}

func (r *runner) runCtl(verb, arg string) (string, error) {
	if !r.live || r.ctl == "" {
		return "", fmt.Errorf("ctl %s needs the conformance runner", verb)
	}
	args := []string{verb}
	if arg != "" {
		args = append(args, arg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.ctl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ctl %s %s: %v: %s", verb, arg, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func checkRange(out string, expect json.RawMessage) error {
	if len(expect) == 0 {
		return nil
	}
	var e struct {
		Min    *int64 `json:"min"`
		Max    *int64 `json:"max"`
		Equals *int64 `json:"equals"`
	}
	if err := json.Unmarshal(expect, &e); err != nil {
		return err
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return fmt.Errorf("ctl printed %q, not an integer", out)
	}
	if e.Equals != nil && n != *e.Equals {
		return fmt.Errorf("ctl printed %d, want %d", n, *e.Equals)
	}
	if e.Min != nil && n < *e.Min {
		return fmt.Errorf("ctl printed %d, want >= %d", n, *e.Min)
	}
	if e.Max != nil && n > *e.Max {
		return fmt.Errorf("ctl printed %d, want <= %d", n, *e.Max)
	}
	return nil
}

// byteStr decodes the byte-string notation: a string, {"hex"},
// {"repeat","count"} or {"var"}.
func (r *runner) byteStr(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []byte(s), nil
	}
	var o struct {
		Hex    *string `json:"hex"`
		Repeat *string `json:"repeat"`
		Count  int     `json:"count"`
		Var    *string `json:"var"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("byte string %s: %v", raw, err)
	}
	switch {
	case o.Hex != nil:
		return hex.DecodeString(*o.Hex)
	case o.Repeat != nil:
		return bytes.Repeat([]byte(*o.Repeat), o.Count), nil
	case o.Var != nil:
		v, ok := r.vars[*o.Var]
		if !ok {
			return nil, fmt.Errorf("no variable %s", *o.Var)
		}
		return r.byteStr(v)
	}
	return nil, fmt.Errorf("byte string %s", raw)
}

func (r *runner) uintArg(raw json.RawMessage) (uint64, error) {
	var o struct {
		Var *string `json:"var"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Var != nil {
		v, ok := r.vars[*o.Var]
		if !ok {
			return 0, fmt.Errorf("no variable %s", *o.Var)
		}
		raw = v
	}
	var n uint64
	err := json.Unmarshal(raw, &n)
	return n, err
}

type outcome struct {
	code       string
	value      []byte
	results    []outResult
	count      int64
	version    uint64
	lease      []byte
	retryAfter uint32
	stats      map[string]uint64
	elapsed    time.Duration
	err        error
}

type outResult struct {
	code  string
	value []byte
}

func errOutcome(err error) outcome {
	o := outcome{code: CodeOf(err).String(), err: err}
	var e *Error
	if errors.As(err, &e) {
		o.version, o.count, o.retryAfter = e.Version, e.Count, e.RetryAfterMs
	}
	return o
}

func resultsOutcome(rs []KeyResult) []outResult {
	out := make([]outResult, len(rs))
	for i, kr := range rs {
		out[i] = outResult{code: CodeOf(kr.Err).String(), value: kr.Value}
	}
	return out
}

// call maps one scenario call onto the public API and its result or error
// onto an outcome.
func (r *runner) call(c *Client, name string, rawArgs json.RawMessage) outcome {
	start := time.Now()
	o := r.call1(c, name, rawArgs)
	o.elapsed = time.Since(start)
	return o
}

func (r *runner) call1(c *Client, name string, rawArgs json.RawMessage) outcome {
	a := map[string]json.RawMessage{}
	if len(rawArgs) > 0 {
		if err := json.Unmarshal(rawArgs, &a); err != nil {
			return outcome{code: "ADAPTER_ERROR", err: err}
		}
	}
	bad := func(err error) outcome { return outcome{code: "ADAPTER_ERROR", err: err} }
	var ks string
	if v, ok := a["keyspace"]; ok {
		_ = json.Unmarshal(v, &ks)
	}
	c = c.Keyspace(ks)
	if v, ok := a["deadline_ms"]; ok {
		var d int64
		_ = json.Unmarshal(v, &d)
		c = c.WithTimeout(time.Duration(d) * time.Millisecond)
	}
	ctx := context.Background()
	num := func(k string) uint64 {
		v, ok := a[k]
		if !ok {
			return 0
		}
		n, _ := r.uintArg(v)
		return n
	}
	flag := func(k string) bool {
		var b bool
		_ = json.Unmarshal(a[k], &b)
		return b
	}
	ttl := func(k string) time.Duration { return time.Duration(num(k)) * time.Millisecond }
	key, err := r.byteStr(a["key"])
	if err != nil {
		return bad(err)
	}
	value, err := r.byteStr(a["value"])
	if err != nil {
		return bad(err)
	}
	keyList := func() ([]string, error) {
		var raws []json.RawMessage
		if err := json.Unmarshal(a["keys"], &raws); err != nil {
			return nil, err
		}
		keys := []string{}
		for _, kr := range raws {
			k, err := r.byteStr(kr)
			if err != nil {
				return nil, err
			}
			keys = append(keys, string(k))
		}
		return keys, nil
	}
	switch name {
	case "ping":
		if err := c.Ping(ctx); err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK"}
	case "get":
		v, err := c.Get(ctx, string(key))
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", value: v}
	case "set":
		err := c.Set(ctx, string(key), value, &SetOptions{TTL: ttl("ttl_ms"), NX: flag("nx"), XX: flag("xx")})
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK"}
	case "del":
		ok, err := c.Del(ctx, string(key))
		if err != nil {
			return errOutcome(err)
		}
		if !ok {
			return outcome{code: "NOT_FOUND"}
		}
		return outcome{code: "OK", count: 1}
	case "expire":
		ok, err := c.Expire(ctx, string(key), ttl("ttl_ms"))
		if err != nil {
			return errOutcome(err)
		}
		if !ok {
			return outcome{code: "NOT_FOUND"}
		}
		return outcome{code: "OK", count: 1}
	case "mget":
		keys, err := keyList()
		if err != nil {
			return bad(err)
		}
		rs, err := c.MGet(ctx, keys...)
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", results: resultsOutcome(rs)}
	case "mdel":
		keys, err := keyList()
		if err != nil {
			return bad(err)
		}
		n, rs, err := c.MDel(ctx, keys...)
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", count: n, results: resultsOutcome(rs)}
	case "mset":
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(a["items"], &items); err != nil {
			return bad(err)
		}
		its := make([]Item, len(items))
		for i, it := range items {
			k, err := r.byteStr(it["key"])
			if err != nil {
				return bad(err)
			}
			v, err := r.byteStr(it["value"])
			if err != nil {
				return bad(err)
			}
			var t uint64
			if raw, ok := it["ttl_ms"]; ok {
				_ = json.Unmarshal(raw, &t)
			}
			its[i] = Item{Key: string(k), Value: v, TTL: time.Duration(t) * time.Millisecond}
		}
		rs, err := c.MSet(ctx, its, &SetOptions{TTL: ttl("ttl_ms"), NX: flag("nx"), XX: flag("xx")})
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", results: resultsOutcome(rs)}
	case "invalidate":
		p, err := r.byteStr(a["pattern"])
		if err != nil {
			return bad(err)
		}
		n, err := c.Invalidate(ctx, string(p))
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", count: n}
	case "get_or_lease":
		l, err := c.GetOrLease(ctx, string(key), ttl("ttl_ms"))
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: l.Status.String(), value: l.Value, version: l.Version, lease: l.Token,
			retryAfter: uint32(l.RetryAfter / time.Millisecond)}
	case "set_with_lease":
		lease, err := r.byteStr(a["lease"])
		if err != nil {
			return bad(err)
		}
		if err := c.SetWithLease(ctx, string(key), value, lease, ttl("ttl_ms")); err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK"}
	case "get_versioned":
		v, ver, err := c.GetVersioned(ctx, string(key))
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", value: v, version: ver}
	case "set_versioned":
		ver, err := c.SetVersioned(ctx, string(key), value, num("version"), ttl("ttl_ms"))
		if err != nil {
			o := errOutcome(err)
			o.version = ver
			return o
		}
		return outcome{code: "OK", version: ver}
	case "stats":
		st, err := c.Stats(ctx)
		if err != nil {
			return errOutcome(err)
		}
		return outcome{code: "OK", stats: st}
	case "raw":
		req := &pb.Request{}
		if err := protojson.Unmarshal(a["request"], req); err != nil {
			return bad(err)
		}
		resp, err := c.Do(ctx, req)
		if err != nil {
			return errOutcome(err)
		}
		o := outcome{code: Code(resp.GetCode()).String(), value: resp.GetValue(), count: resp.GetCount(),
			version: resp.GetVersion(), lease: resp.GetLease(), retryAfter: resp.GetRetryAfterMs(), stats: resp.GetStats()}
		for _, kr := range resp.GetResults() {
			o.results = append(o.results, outResult{code: Code(kr.GetCode()).String(), value: kr.GetValue()})
		}
		return o
	}
	return bad(fmt.Errorf("unknown call %q", name))
}

type expectDoc struct {
	Code         *string           `json:"code"`
	CodeIn       []string          `json:"code_in"`
	Value        json.RawMessage   `json:"value"`
	Results      []json.RawMessage `json:"results"`
	Count        json.RawMessage   `json:"count"`
	Version      json.RawMessage   `json:"version"`
	LeasePresent bool              `json:"lease_present"`
	StatsHas     []string          `json:"stats_has"`
	WithinMs     int64             `json:"within_ms"`
}

func codeMatches(got string, code *string, in []string) error {
	if code != nil && got != *code {
		return fmt.Errorf("code %s, want %s", got, *code)
	}
	if in != nil {
		for _, c := range in {
			if c == got {
				return nil
			}
		}
		return fmt.Errorf("code %s, want one of %v", got, in)
	}
	return nil
}

func (r *runner) intMatches(what string, got int64, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var rg struct {
		Min *int64 `json:"min"`
		Max *int64 `json:"max"`
	}
	if raw[0] == '{' {
		if err := json.Unmarshal(raw, &rg); err != nil {
			return err
		}
		if rg.Min != nil && got < *rg.Min || rg.Max != nil && got > *rg.Max {
			return fmt.Errorf("%s %d, want %s", what, got, raw)
		}
		return nil
	}
	n, err := r.uintArg(raw)
	if err != nil {
		return err
	}
	if uint64(got) != n {
		return fmt.Errorf("%s %d, want %d", what, got, n)
	}
	return nil
}

func (r *runner) check(o outcome, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var e expectDoc
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	wrap := func(err error) error {
		if err != nil && o.err != nil {
			return fmt.Errorf("%v (client error: %v)", err, o.err)
		}
		return err
	}
	if err := codeMatches(o.code, e.Code, e.CodeIn); err != nil {
		return wrap(err)
	}
	if len(e.Value) > 0 {
		want, err := r.byteStr(e.Value)
		if err != nil {
			return err
		}
		if !bytes.Equal(o.value, want) {
			return fmt.Errorf("value %q, want %q", trunc(string(o.value)), trunc(string(want)))
		}
	}
	if e.Results != nil {
		if len(o.results) != len(e.Results) {
			return fmt.Errorf("%d results, want %d", len(o.results), len(e.Results))
		}
		for i, rr := range e.Results {
			var we struct {
				Code   *string         `json:"code"`
				CodeIn []string        `json:"code_in"`
				Value  json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(rr, &we); err != nil {
				return err
			}
			if err := codeMatches(o.results[i].code, we.Code, we.CodeIn); err != nil {
				return fmt.Errorf("result %d: %v", i, err)
			}
			if len(we.Value) > 0 {
				want, err := r.byteStr(we.Value)
				if err != nil {
					return err
				}
				if !bytes.Equal(o.results[i].value, want) {
					return fmt.Errorf("result %d: value %q, want %q", i, o.results[i].value, want)
				}
			}
		}
	}
	if err := r.intMatches("count", o.count, e.Count); err != nil {
		return err
	}
	if err := r.intMatches("version", int64(o.version), e.Version); err != nil {
		return err
	}
	if e.LeasePresent && len(o.lease) == 0 {
		return fmt.Errorf("no lease token")
	}
	for _, s := range e.StatsHas {
		if _, ok := o.stats[s]; !ok {
			return fmt.Errorf("stats without %q", s)
		}
	}
	if e.WithinMs > 0 && o.elapsed > time.Duration(e.WithinMs)*time.Millisecond {
		return fmt.Errorf("settled after %v, want within %d ms", o.elapsed, e.WithinMs)
	}
	return nil
}

func subst(raw json.RawMessage, i int) json.RawMessage {
	return json.RawMessage(strings.ReplaceAll(string(raw), "${i}", strconv.Itoa(i)))
}

func (r *runner) concurrent(raw, expect json.RawMessage) error {
	var c struct {
		Count  int             `json:"count"`
		Client string          `json:"client"`
		Call   string          `json:"call"`
		Args   json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	cl, err := r.client(c.Client)
	if err != nil {
		return err
	}
	errs := make([]error, c.Count)
	var wg sync.WaitGroup
	for i := 0; i < c.Count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			o := r.call(cl, c.Call, subst(c.Args, i))
			errs[i] = r.check(o, subst(expect, i))
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("call %d: %v", i, err)
		}
	}
	return nil
}

func (r *runner) stampede(raw, expect json.RawMessage) error {
	var s struct {
		Callers  int             `json:"callers"`
		Clients  int             `json:"clients"`
		Keyspace string          `json:"keyspace"`
		Key      json.RawMessage `json:"key"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	var e struct {
		Fills int             `json:"fills"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(expect, &e); err != nil {
		return err
	}
	key, err := r.byteStr(s.Key)
	if err != nil {
		return err
	}
	value, err := r.byteStr(s.Value)
	if err != nil {
		return err
	}
	want, err := r.byteStr(e.Value)
	if err != nil {
		return err
	}
	if s.Clients <= 0 {
		s.Clients = 1
	}
	clients := make([]*Client, s.Clients)
	for i := range clients {
		clients[i] = r.newClient(clientOpts{}).Keyspace(s.Keyspace)
		defer clients[i].Close()
	}
	var fills atomic.Int64
	errs := make([]error, s.Callers)
	var wg sync.WaitGroup
	for i := 0; i < s.Callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := clients[i%len(clients)]
			ctx := context.Background()
			end := time.Now().Add(30 * time.Second)
			for time.Now().Before(end) {
				l, err := c.GetOrLease(ctx, string(key), 0)
				if err != nil {
					errs[i] = err
					return
				}
				switch l.Status {
				case CodeOK:
					if !bytes.Equal(l.Value, want) {
						errs[i] = fmt.Errorf("caller %d read %q", i, l.Value)
					}
					return
				case CodeLeaseGranted:
					fills.Add(1)
					if err := c.SetWithLease(ctx, string(key), value, l.Token, 0); err != nil {
						errs[i] = err
						return
					}
					if !bytes.Equal(value, want) {
						errs[i] = fmt.Errorf("caller %d stored %q", i, value)
					}
					return
				case CodeLeaseWait:
					d := l.RetryAfter
					if d == 0 {
						d = 10 * time.Millisecond
					}
					time.Sleep(d)
				}
			}
			errs[i] = fmt.Errorf("caller %d: no value within 30s", i)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if int(fills.Load()) != e.Fills {
		return fmt.Errorf("%d fills, want %d", fills.Load(), e.Fills)
	}
	return nil
}

func (r *runner) load(raw, expect json.RawMessage) error {
	var l struct {
		Count       int             `json:"count"`
		Concurrency int             `json:"concurrency"`
		After       int64           `json:"after"`
		During      string          `json:"during"`
		Client      string          `json:"client"`
		Call        string          `json:"call"`
		Args        json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return err
	}
	var e struct {
		Failed int `json:"failed"`
	}
	if err := json.Unmarshal(expect, &e); err != nil {
		return err
	}
	cl, err := r.client(l.Client)
	if err != nil {
		return err
	}
	var next, done atomic.Int64
	var failed atomic.Int64
	var firstMu sync.Mutex
	var first []string
	ctlErr := make(chan error, 1)
	var once sync.Once
	startCtl := func() {
		once.Do(func() {
			go func() {
				_, err := r.runCtl(l.During, "")
				ctlErr <- err
			}()
		})
	}
	if l.During == "" {
		ctlErr <- nil
		once.Do(func() {})
	}
	var wg sync.WaitGroup
	for w := 0; w < l.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= l.Count {
					return
				}
				o := r.call(cl, l.Call, subst(l.Args, i))
				if o.code != "OK" {
					failed.Add(1)
					firstMu.Lock()
					if len(first) < 5 {
						first = append(first, fmt.Sprintf("call %d: %s %v", i, o.code, o.err))
					}
					firstMu.Unlock()
				}
				if done.Add(1) == l.After {
					startCtl()
				}
			}
		}()
	}
	wg.Wait()
	startCtl() // if fewer than `after` calls completed
	if err := <-ctlErr; err != nil {
		return err
	}
	if int(failed.Load()) != e.Failed {
		return fmt.Errorf("%d calls failed, want %d; first: %v", failed.Load(), e.Failed, first)
	}
	return nil
}
