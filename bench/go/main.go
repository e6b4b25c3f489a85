// Command bench compares the Go client through slotgate with go-redis's
// ClusterClient straight to the same Redis Cluster: GET and SET of 100-byte
// values from 50 goroutines, in interleaved rounds of the same run. It
// reports ops/s and client CPU per op (getrusage of this process: user +
// system time over the round, divided by the operations it completed).
//
//	tests/conformance/run.sh -- go -C bench/go run . [flags]
//
// It reads the conformance runner's environment (SG_CONF_HOST, SG_CONF_PORT,
// SG_CONF_CA, SG_CONF_SERVER_NAME, SG_CONF_TOKEN, SG_CONF_REDIS).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	slotgate "github.com/slotgate/slotgate/clients/go"
)

var (
	conc     = flag.Int("c", 50, "concurrent goroutines")
	dur      = flag.Duration("d", 3*time.Second, "duration of one round")
	rounds   = flag.Int("rounds", 3, "rounds (each runs every client and op once)")
	valSize  = flag.Int("size", 100, "value size in bytes")
	nkeys    = flag.Int("keys", 10000, "distinct keys")
	poolSize = flag.Int("pool", 2, "slotgate client PoolSize")
	cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the slotgate-client rounds to this file")
	only     = flag.String("only", "", "run only this client (slotgate or go-redis)")
)

type kv interface {
	get(ctx context.Context, k string) error
	set(ctx context.Context, k string, v []byte) error
}

type sgClient struct{ c *slotgate.Client }

func (s sgClient) get(ctx context.Context, k string) error {
	_, err := s.c.Get(ctx, k)
	return err
}
func (s sgClient) set(ctx context.Context, k string, v []byte) error {
	return s.c.Set(ctx, k, v, nil)
}

type rdClient struct{ c *redis.ClusterClient }

func (r rdClient) get(ctx context.Context, k string) error { return r.c.Get(ctx, k).Err() }
func (r rdClient) set(ctx context.Context, k string, v []byte) error {
	return r.c.Set(ctx, k, v, 0).Err()
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type result struct {
	client, op string
	ops        int64
	errs       int64
	wall, cpu  time.Duration
}

func (r result) opsPerSec() float64 { return float64(r.ops) / r.wall.Seconds() }
func (r result) cpuPerOp() float64  { return float64(r.cpu.Nanoseconds()) / float64(r.ops) / 1000 }

func round(name, op string, c kv, keys []string, val []byte) result {
	runtime.GC()
	ctx := context.Background()
	var ops, errs atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	cpu0, t0 := cpuNow(), time.Now()
	for g := 0; g < *conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			i := g * 7919
			for !stop.Load() {
				k := keys[i%len(keys)]
				i++
				var err error
				if op == "GET" {
					err = c.get(ctx, k)
				} else {
					err = c.set(ctx, k, val)
				}
				if err != nil {
					errs.Add(1)
				} else {
					ops.Add(1)
				}
			}
		}(g)
	}
	time.Sleep(*dur)
	stop.Store(true)
	wg.Wait()
	return result{client: name, op: op, ops: ops.Load(), errs: errs.Load(), wall: time.Since(t0), cpu: cpuNow() - cpu0}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	env := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			log.Fatalf("%s not set: run under tests/conformance/run.sh", k)
		}
		return v
	}
	pem, err := os.ReadFile(env("SG_CONF_CA"))
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	sg := slotgate.NewClient(&slotgate.Options{
		Addr:      net.JoinHostPort(env("SG_CONF_HOST"), env("SG_CONF_PORT")),
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: os.Getenv("SG_CONF_SERVER_NAME")},
		Token:     os.Getenv("SG_CONF_TOKEN"),
		PoolSize:  *poolSize,
	})
	defer sg.Close()
	rd := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(env("SG_CONF_REDIS"), ",")})
	defer rd.Close()

	ctx := context.Background()
	keys := make([]string, *nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:{%d}:k", i)
	}
	val := make([]byte, *valSize)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	clients := map[string]kv{"slotgate": sgClient{sg}, "go-redis": rdClient{rd}}
	// Both clients read the same keys (the default keyspace has no prefix).
	for _, k := range keys {
		if err := sg.Set(ctx, k, val, nil); err != nil {
			log.Fatalf("preload: %v", err)
		}
	}
	for _, c := range clients { // warm up connections
		round("warmup", "GET", c, keys, val)
	}

	var prof *os.File
	if *cpuProf != "" {
		if prof, err = os.Create(*cpuProf); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("Go bench: %d goroutines, %d B values, %d keys, %v rounds, slotgate PoolSize %d, GOMAXPROCS %d\n",
		*conc, *valSize, *nkeys, *dur, *poolSize, runtime.GOMAXPROCS(0))
	fmt.Printf("%-6s %-4s %-9s %12s %14s %8s\n", "round", "op", "client", "ops/s", "CPU us/op", "errors")
	all := map[string][]result{}
	for r := 1; r <= *rounds; r++ {
		order := []string{"slotgate", "go-redis"}
		if r%2 == 0 {
			order = []string{"go-redis", "slotgate"}
		}
		for _, op := range []string{"SET", "GET"} {
			for _, name := range order {
				if *only != "" && name != *only {
					continue
				}
				if prof != nil && name == "slotgate" {
					_ = pprof.StartCPUProfile(prof)
				}
				res := round(name, op, clients[name], keys, val)
				if prof != nil && name == "slotgate" {
					pprof.StopCPUProfile()
					prof.Close()
					prof = nil
				}
				all[op+"/"+name] = append(all[op+"/"+name], res)
				fmt.Printf("%-6d %-4s %-9s %12.0f %14.2f %8d\n", r, op, name, res.opsPerSec(), res.cpuPerOp(), res.errs)
			}
		}
	}
	median := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Println("\nmedians (slotgate client through slotgate vs go-redis ClusterClient direct):")
	fmt.Printf("%-4s %14s %14s %8s %16s %16s %8s\n", "op", "sg ops/s", "redis ops/s", "ratio", "sg CPU us/op", "redis CPU us/op", "ratio")
	for _, op := range []string{"SET", "GET"} {
		s, d := all[op+"/slotgate"], all[op+"/go-redis"]
		if len(s) == 0 || len(d) == 0 {
			continue
		}
		so, do := median(s, result.opsPerSec), median(d, result.opsPerSec)
		sc, dc := median(s, result.cpuPerOp), median(d, result.cpuPerOp)
		fmt.Printf("%-4s %14.0f %14.0f %8.2f %16.2f %16.2f %8.2f\n", op, so, do, so/do, sc, dc, sc/dc)
	}
}
