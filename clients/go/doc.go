// Package slotgate is the Go client of slotgate, a cache proxy in front of
// Redis Cluster that clients reach with length-prefixed protobuf frames over
// TLS (proto/PROTOCOL.md).
//
// A Client is goroutine-safe and shared: a small pool of connections, each
// multiplexing many requests by id with out-of-order replies, a writer that
// sends everything queued in one write, at most max_inflight requests
// outstanding per connection, limits checked before sending, deadlines from
// the context or the view's Timeout, reconnects with backoff and jitter, and
// transparent resends of requests the server never executed (SHUTTING_DOWN).
// Options and method shapes follow go-redis: NewClient(&Options{...}),
// context first, ErrNotFound for a miss (as redis.Nil), *Error for the code.
//
// GameCache is the game-domain layer (sessions, rooms, assets, game-system
// templates, batches, invalidation, cached queries with a fleet-wide single
// fill, health, stats); NewMemoryClient and NewMemoryGameCache are in-memory
// fakes with the same API for unit tests.
package slotgate
