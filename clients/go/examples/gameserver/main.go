// Command gameserver is a tiny game server loop on GameCache: players join a
// room (sessions and room state cached), a leaderboard is computed once per
// minute fleet-wide with GetCachedQuery, and a player leaving is forgotten
// with InvalidateUserData.
//
//	go run ./examples/gameserver -memory                  # in-memory fake
//	go run ./examples/gameserver -addr 127.0.0.1:7420 -ca deploy/local/tls/ca.pem
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	slotgate "github.com/slotgate/slotgate/clients/go"
)

type Session struct {
	UserID string `json:"userId"`
	Name   string `json:"name"`
	RoomID string `json:"roomId"`
}

type Room struct {
	Players []string `json:"players"`
	Turn    int      `json:"turn"`
}

func main() {
	memory := flag.Bool("memory", false, "use the in-memory fake instead of a slotgate")
	addr := flag.String("addr", "127.0.0.1:7420", "slotgate address")
	ca := flag.String("ca", "", "PEM of the CA that signed slotgate's certificate (TLS)")
	server := flag.String("server-name", "localhost", "host name to verify")
	flag.Parse()

	var client *slotgate.Client
	if *memory {
		client = slotgate.NewMemoryClient(nil)
	} else {
		opt := &slotgate.Options{Addr: *addr, Token: os.Getenv("SLOTGATE_TOKEN")}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				log.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			opt.TLSConfig = &tls.Config{RootCAs: roots, ServerName: *server}
		}
		client = slotgate.NewClient(opt)
	}
	gc := slotgate.NewGameCache(client, nil)
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if h := gc.HealthCheck(ctx); !h.Healthy {
		log.Fatalf("slotgate unreachable: %v", h.Err)
	}
	room := Room{}
	for _, p := range []struct{ id, name string }{{"1", "ann"}, {"2", "bob"}} {
		if err := gc.SetUserSession(ctx, p.id, Session{UserID: p.id, Name: p.name, RoomID: "789"}, time.Hour); err != nil {
			log.Fatal(err)
		}
		room.Players = append(room.Players, p.id)
	}
	if err := gc.SetRoomState(ctx, "789", room, 30*time.Minute); err != nil {
		log.Fatal(err)
	}

	var s Session
	if ok, err := gc.GetUserSession(ctx, "2", &s); err != nil || !ok {
		log.Fatalf("session of player 2: %v %v", ok, err)
	}
	fmt.Printf("player 2 is %s in room %s\n", s.Name, s.RoomID)

	board, err := slotgate.CachedQuery(ctx, gc, "leaderboard:room:789", func(ctx context.Context) ([]string, error) {
		fmt.Println("computing the leaderboard (once per minute, fleet-wide)")
		return []string{"ann", "bob"}, nil
	}, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leaderboard:", board)

	n, err := gc.InvalidateUserData(ctx, "2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("player 2 left: %d key(s) forgotten\n", n)

	st, err := gc.GetStats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("session hit rate %.2f, overall %.2f\n", st.Keyspaces["session"].HitRate, st.HitRate)
}
