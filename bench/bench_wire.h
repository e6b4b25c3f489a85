/*
 * bench_wire - the slotgate frame format as the benchmark tools need it,
 * over libslotgate's public codec (slotgate.h: sg_encode_request,
 * sg_decode_response). Requests are encoded with the tool's own ids and
 * added to a bufferevent's output by reference; responses are decoded off
 * the input evbuffer, keeping only what a load generator needs: id, code
 * and per-key codes. Nothing here does I/O beyond appending to and reading
 * from an evbuffer.
 */
#ifndef SG_BENCH_WIRE_H
#define SG_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

/* Upper bound the tools accept for one incoming frame (the proxy's default
 * max_frame_bytes is 8 MiB; leave headroom). */
#define SG_BENCH_MAX_FRAME (64u << 20)

struct sg_bench_slice {
    const uint8_t *ptr;
    size_t len;
};

/* One request to encode: op plus parallel keys/values lists. */
struct sg_bench_req {
    uint64_t id;
    int op; /* Slotgate__V1__Op value */
    struct sg_bench_slice keyspace;
    const struct sg_bench_slice *keys;
    size_t nkeys;
    const struct sg_bench_slice *values; /* NULL or nkeys entries */
};

/* What the scanner extracts from one ServerMessage. */
enum sg_bench_msg_kind {
    SG_BENCH_MSG_OTHER = 0,
    SG_BENCH_MSG_HELLO_REPLY,
    SG_BENCH_MSG_RESPONSE,
    SG_BENCH_MSG_CONN_ERROR,
};

struct sg_bench_msg {
    enum sg_bench_msg_kind kind;
    uint64_t id;           /* RESPONSE */
    int code;              /* RESPONSE or CONN_ERROR overall code */
    uint32_t nresults;     /* RESPONSE: number of KeyResults */
    uint32_t key_errors;   /* RESPONSE: KeyResults with code >= 100 */
    int first_key_error;   /* code of the first such KeyResult, or 0 */
    uint32_t key_misses;   /* RESPONSE: KeyResults with CODE_NOT_FOUND */
    uint32_t max_inflight; /* HELLO_REPLY limits, 0 when absent */
    uint32_t max_batch_keys;
};

/* Append one length-prefixed ClientMessage{request} to out.
 * Returns 0, or -1 if the evbuffer refused memory. */
int sg_bench_wire_put_request(struct evbuffer *out, const struct sg_bench_req *req);

/* Append one length-prefixed ClientMessage{hello{protocol_version=1}}. */
int sg_bench_wire_put_hello(struct evbuffer *out, const char *client_name);

/* Try to take one complete frame off the front of in and scan it into *msg.
 * Returns 1 if a frame was consumed, 0 if more bytes are needed, -1 if the
 * bytes are not a valid frame (length over SG_BENCH_MAX_FRAME or malformed
 * protobuf); on -1 the buffer is left as is and the connection is unusable. */
int sg_bench_wire_take(struct evbuffer *in, struct sg_bench_msg *msg);

/* Name of a slotgate Code value ("CODE_TIMEOUT"), or "CODE_<n>" in buf. */
const char *sg_bench_code_name(int code, char *buf, size_t buflen);

#endif
