/*
 * make_corpus - writes the generated seeds of the fuzz corpora: client frames
 * packed with protobuf-c (fuzz_frame), stored values in every envelope form
 * (fuzz_envelope) and Redis replies (fuzz_resp). The config seeds are plain
 * YAML files kept by hand. Run from the build: fuzz_make_corpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "frame.h"

static const char *root;

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_str(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}

/* Frame (header + body) of m, written as corpus/fuzz_frame/name. */
static void put_frame(const char *name, const Slotgate__V1__ClientMessage *m)
{
    size_t body = slotgate__v1__client_message__get_packed_size(m);
    uint8_t *buf = malloc(SG_FRAME_HEADER + body);
    if (buf == NULL)
        exit(1);
    slotgate__v1__client_message__pack(m, buf + SG_FRAME_HEADER);
    sg_frame_put_header(buf, (uint32_t)body);
    put("fuzz_frame", name, buf, SG_FRAME_HEADER + body);
    free(buf);
}

static void put_request(const char *name, Slotgate__V1__Request *req)
{
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = req;
    put_frame(name, &m);
}

static void make_frames(void)
{
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    Slotgate__V1__Hello hello = SLOTGATE__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "fuzz-seed";
    hello.auth_token.data = (uint8_t *)"s3cret-token";
    hello.auth_token.len = 12;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    m.hello = &hello;
    put_frame("hello", &m);

    ProtobufCBinaryData keys[3] = {
        {5, (uint8_t *)"user1"}, {13, (uint8_t *)"{room7}:score"}, {12, (uint8_t *)"{room7}:name"}};
    ProtobufCBinaryData values[3] = {
        {3, (uint8_t *)"abc"}, {4, (uint8_t *)"1234"}, {6, (uint8_t *)"\xfeSG\x01\x00x"}};
    uint64_t ttls[3] = {0, 60000, 1};

    Slotgate__V1__Request get = SLOTGATE__V1__REQUEST__INIT;
    get.id = 1;
    get.op = SLOTGATE__V1__OP__OP_GET;
    get.n_keys = 1;
    get.keys = keys;
    put_request("get", &get);
    get.keyspace = "session";
    get.deadline_ms = 250;
    put_request("get_keyspace", &get);

    Slotgate__V1__Request set = SLOTGATE__V1__REQUEST__INIT;
    set.id = 2;
    set.op = SLOTGATE__V1__OP__OP_SET;
    set.n_keys = 1;
    set.keys = keys;
    set.n_values = 1;
    set.values = values;
    set.ttl_ms = 30000;
    set.condition = SLOTGATE__V1__CONDITION__COND_NX;
    put_request("set_nx", &set);

    Slotgate__V1__Request mset = SLOTGATE__V1__REQUEST__INIT;
    mset.id = 3;
    mset.op = SLOTGATE__V1__OP__OP_MSET;
    mset.keyspace = "room";
    mset.n_keys = 3;
    mset.keys = keys;
    mset.n_values = 3;
    mset.values = values;
    mset.n_ttls_ms = 3;
    mset.ttls_ms = ttls;
    put_request("mset", &mset);

    Slotgate__V1__Request mget = SLOTGATE__V1__REQUEST__INIT;
    mget.id = 4;
    mget.op = SLOTGATE__V1__OP__OP_MGET;
    mget.n_keys = 3;
    mget.keys = keys;
    put_request("mget", &mget);

    Slotgate__V1__Request inval = SLOTGATE__V1__REQUEST__INIT;
    inval.id = 5;
    inval.op = SLOTGATE__V1__OP__OP_INVALIDATE;
    inval.keyspace = "asset";
    inval.pattern.data = (uint8_t *)"tex:*";
    inval.pattern.len = 5;
    put_request("invalidate", &inval);

    Slotgate__V1__Request lease = SLOTGATE__V1__REQUEST__INIT;
    lease.id = 6;
    lease.op = SLOTGATE__V1__OP__OP_SET_WITH_LEASE;
    lease.n_keys = 1;
    lease.keys = keys;
    lease.n_values = 1;
    lease.values = values;
    lease.lease.data = (uint8_t *)"lease-0123456789";
    lease.lease.len = 16;
    put_request("set_with_lease", &lease);

    Slotgate__V1__Request ver = SLOTGATE__V1__REQUEST__INIT;
    ver.id = UINT64_MAX;
    ver.op = SLOTGATE__V1__OP__OP_SET_VERSIONED;
    ver.n_keys = 1;
    ver.keys = keys + 1;
    ver.n_values = 1;
    ver.values = values + 1;
    ver.version = 0x0102030405060708ull;
    put_request("set_versioned", &ver);

    Slotgate__V1__Request ping = SLOTGATE__V1__REQUEST__INIT;
    ping.op = SLOTGATE__V1__OP__OP_PING;
    put_request("ping", &ping);

    /* Two frames back to back, and a header announcing more than follows. */
    static const uint8_t two[] = {0, 0, 0, 2, 0x12, 0x00, 0, 0, 0, 2, 0x0a, 0x00};
    put("fuzz_frame", "two_frames", two, sizeof(two));
    static const uint8_t short_body[] = {0, 0, 1, 0, 0x12, 0x04, 0x08, 0x01};
    put("fuzz_frame", "short_body", short_body, sizeof(short_body));
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x12, 0x00};
    put("fuzz_frame", "huge_header", huge, sizeof(huge));
}

static void put_encoded(const char *name, const char *value, size_t len, int compress,
                        int versioned, uint64_t version)
{
    const uint8_t *out = NULL;
    int owned = 0;
    size_t n = sg_envelope_encode((const uint8_t *)value, len, compress, 0, versioned, version,
                                  &out, &owned);
    put("fuzz_envelope", name, out, n);
    if (owned)
        free((void *)out);
}

static void make_envelopes(void)
{
    char text[600];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = "the quick brown fox "[i % 20];
    put_encoded("raw", "plain value", 11, SG_ENV_NO_COMPRESS, 0, 0);
    put_encoded("empty", "", 0, SG_ENV_NO_COMPRESS, 0, 0);
    put_encoded("magic_value", "\xfeSGvalue", 8, SG_ENV_NO_COMPRESS, 0, 0);
    put_encoded("snappy", text, sizeof(text), SG_ENV_ALWAYS_TRY, 0, 0);
    put_encoded("versioned", "v", 1, SG_ENV_NO_COMPRESS, 1, 42);
    put_encoded("versioned_max", "", 0, SG_ENV_NO_COMPRESS, 1, UINT64_MAX);
    put_encoded("snappy_versioned", text, sizeof(text), SG_ENV_AUTO, 1, 7);

    uint8_t *lease = NULL;
    size_t n = sg_envelope_lease((const uint8_t *)"lease-token-1234", 16, &lease);
    put("fuzz_envelope", "lease", lease, n);
    free(lease);

    /* Corrupt: bad layout version, unknown flag, lease mixed with snappy, a
     * truncated version, a snappy length claim far beyond the payload. */
    put("fuzz_envelope", "corrupt_layout", "\xfeSG\x02\x00x", 6);
    put("fuzz_envelope", "corrupt_flags", "\xfeSG\x01\x08x", 6);
    put("fuzz_envelope", "corrupt_lease_snappy", "\xfeSG\x01\x05x", 6);
    put("fuzz_envelope", "corrupt_short_version", "\xfeSG\x01\x02\x00\x01", 7);
    put("fuzz_envelope", "corrupt_snappy_len", "\xfeSG\x01\x01\xff\xff\xff\xff\x0f\x00", 11);
    put("fuzz_envelope", "magic_only", "\xfeSG", 3);
}

static void make_resp(void)
{
    put_str("fuzz_resp", "status", "+OK\r\n");
    put_str("fuzz_resp", "bulk", "$5\r\nhello\r\n");
    put("fuzz_resp", "bulk_binary", "$8\r\n\xfeSG\x01\x00\r\n\x00\r\n", 14);
    put_str("fuzz_resp", "nil", "$-1\r\n*-1\r\n");
    put_str("fuzz_resp", "integer", ":1000\r\n:-1\r\n:0\r\n");
    put_str("fuzz_resp", "array", "*3\r\n$3\r\nfoo\r\n$-1\r\n$3\r\nbar\r\n");
    put_str("fuzz_resp", "nested", "*2\r\n*2\r\n:1\r\n*1\r\n+x\r\n*0\r\n");
    put_str("fuzz_resp", "moved", "-MOVED 3999 127.0.0.1:6381\r\n");
    put_str("fuzz_resp", "ask", "-ASK 3999 [::1]:7002\r\n");
    put_str("fuzz_resp", "errors",
            "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
            "-CLUSTERDOWN The cluster is down\r\n"
            "-LOADING Redis is loading the dataset in memory\r\n"
            "-BUSY Redis is busy running a script\r\n"
            "-ERR unknown command\r\n");
    put_str("fuzz_resp", "exec_with_errors", "*3\r\n+OK\r\n-MOVED 12182 10.0.0.3:7001\r\n:1\r\n");
    put_str("fuzz_resp", "cluster_slots",
            "*2\r\n"
            "*4\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n"
            "$40\r\n09dbe9720cda62f7865eabc5fd8857c5d2678366\r\n"
            "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$40\r\n1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5\r\n"
            "*3\r\n:8192\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n"
            "$40\r\n2a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5\r\n");
    put_str("fuzz_resp", "scan_page",
            "*2\r\n$4\r\n1536\r\n*3\r\n$10\r\nasset:tex1\r\n$10\r\nasset:tex2\r\n$4\r\nasse\r\n");
    put_str("fuzz_resp", "pipeline", "+OK\r\n$-1\r\n:1\r\n$3\r\nabc\r\n-ERR x\r\n*1\r\n:2\r\n");
    put_str("fuzz_resp", "bad_type", "?what\r\n");
    put_str("fuzz_resp", "partial", "*2\r\n$10\r\nabc");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    make_frames();
    make_envelopes();
    make_resp();
    return 0;
}
