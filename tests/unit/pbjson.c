/*
 * pbjson - a protobuf-c message against its canonical proto3 JSON. Walks the
 * message descriptor: each field is looked up in the JSON object under its
 * lowerCamelCase name and compared by type; repeated fields element by
 * element, maps (repeated key/value entries) as maps. Only the field types
 * slotgate.proto uses are handled; anything else is reported as a mismatch.
 */
#include "pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pbjson_ctx {
    char *err;
    size_t errlen;
    char path[256];
};

static int pbjson_fail(struct pbjson_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pbjson_fail(struct pbjson_ctx *c, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, c->errlen, "%s: ", c->path[0] ? c->path : "(top)");

    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* proto3 JSON name: snake_case -> lowerCamelCase. */
static void pbjson_camel(const char *name, char *out, size_t outlen)
{
    size_t o = 0;
    int up = 0;

    for (; *name && o + 1 < outlen; name++) {
        if (*name == '_') {
            up = 1;
            continue;
        }
        out[o++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        up = 0;
    }
    out[o] = '\0';
}

int pbjson_enum(const ProtobufCEnumDescriptor *d, const json_t *v, int *out)
{
    const ProtobufCEnumValue *ev;

    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (int)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    ev = protobuf_c_enum_descriptor_get_value_by_name(d, json_string_value(v));
    if (ev == NULL)
        return -1;
    *out = ev->value;
    return 0;
}

/* A decimal string of digits (with '-' if sign) parsed by strto*; 0 or -1. */
static int pbjson_decimal(const char *s, int sign)
{
    if (sign && *s == '-')
        s++;
    if (*s == '\0')
        return -1;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return -1;
    return 0;
}

int pbjson_u64(const json_t *v, uint64_t *out)
{
    const char *s;
    char *end;
    unsigned long long n;

    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (pbjson_decimal(s, 0) < 0)
        return -1;
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)n;
    return 0;
}

int pbjson_i64(const json_t *v, int64_t *out)
{
    const char *s;
    char *end;
    long long n;

    if (v == NULL) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    if (pbjson_decimal(s, 1) < 0)
        return -1;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)n;
    return 0;
}

static int pbjson_b64_digit(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int pbjson_bytes(const json_t *v, uint8_t **out, size_t *len)
{
    const char *s;
    size_t n, i, o = 0;
    uint8_t *buf;

    *out = NULL;
    *len = 0;
    if (v == NULL) {
        *out = malloc(1);
        return *out ? 0 : -1;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    n = strlen(s);
    if (n % 4 != 0)
        return -1;
    buf = malloc(n / 4 * 3 + 1);
    if (buf == NULL)
        return -1;
    for (i = 0; i < n; i += 4) {
        int d[4], k, pad = 0;

        for (k = 0; k < 4; k++) {
            if (s[i + (size_t)k] == '=' && i + 4 == n && k >= 2) {
                d[k] = 0;
                pad++;
            } else if (pad > 0 || (d[k] = pbjson_b64_digit(s[i + (size_t)k])) < 0) {
                free(buf);
                return -1;
            }
        }
        uint32_t w =
            (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
        buf[o++] = (uint8_t)(w >> 16);
        if (pad < 2)
            buf[o++] = (uint8_t)(w >> 8);
        if (pad < 1)
            buf[o++] = (uint8_t)w;
    }
    *out = buf;
    *len = o;
    return 0;
}

static int pbjson_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int pbjson_hex(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex), i;
    uint8_t *buf;

    if (n % 2 != 0)
        return -1;
    buf = malloc(n / 2 + 1);
    if (buf == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = pbjson_nibble(hex[2 * i]), lo = pbjson_nibble(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(buf);
            return -1;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = buf;
    *len = n / 2;
    return 0;
}

static int pbjson_message(struct pbjson_ctx *c, const ProtobufCMessageDescriptor *d,
                          const ProtobufCMessage *m, const json_t *j);

/* Size of one element of a repeated field of this type in protobuf-c's arrays. */
static size_t pbjson_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT32:
        return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_INT64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0;
    }
}

/*
 * One value of field f stored at p against JSON v (NULL: the field is not in
 * the JSON, so the default is expected). For a sub-message, v NULL means the
 * sub-message must be absent.
 */
static int pbjson_value(struct pbjson_ctx *c, const ProtobufCFieldDescriptor *f, const void *p,
                        const json_t *v)
{
    uint64_t u;
    int64_t i;
    int e;

    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
        if (pbjson_u64(v, &u) < 0 || u > UINT32_MAX)
            return pbjson_fail(c, "expected JSON is not a uint32");
        if (*(const uint32_t *)p != u)
            return pbjson_fail(c, "got %" PRIu32 ", want %" PRIu64, *(const uint32_t *)p, u);
        return 0;
    case PROTOBUF_C_TYPE_INT32:
        if (pbjson_i64(v, &i) < 0 || i < INT32_MIN || i > INT32_MAX)
            return pbjson_fail(c, "expected JSON is not an int32");
        if (*(const int32_t *)p != i)
            return pbjson_fail(c, "got %" PRId32 ", want %" PRId64, *(const int32_t *)p, i);
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
        if (pbjson_u64(v, &u) < 0)
            return pbjson_fail(c, "expected JSON is not a uint64");
        if (*(const uint64_t *)p != u)
            return pbjson_fail(c, "got %" PRIu64 ", want %" PRIu64, *(const uint64_t *)p, u);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
        if (pbjson_i64(v, &i) < 0)
            return pbjson_fail(c, "expected JSON is not an int64");
        if (*(const int64_t *)p != i)
            return pbjson_fail(c, "got %" PRId64 ", want %" PRId64, *(const int64_t *)p, i);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        if (pbjson_enum(f->descriptor, v, &e) < 0)
            return pbjson_fail(c, "expected JSON is not a value of this enum");
        if (*(const int *)p != e)
            return pbjson_fail(c, "got %d, want %d", *(const int *)p, e);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (v != NULL && !json_is_boolean(v))
            return pbjson_fail(c, "expected JSON is not a bool");
        if (!!*(const protobuf_c_boolean *)p != (v != NULL && json_is_true(v)))
            return pbjson_fail(c, "bool differs");
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *got = *(const char *const *)p;
        const char *want = v ? json_string_value(v) : "";

        if (want == NULL)
            return pbjson_fail(c, "expected JSON is not a string");
        if (strcmp(got ? got : "", want) != 0)
            return pbjson_fail(c, "got \"%s\", want \"%s\"", got ? got : "", want);
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *got = p;
        uint8_t *want;
        size_t wlen;
        int same;

        if (pbjson_bytes(v, &want, &wlen) < 0)
            return pbjson_fail(c, "expected JSON is not base64");
        same = got->len == wlen && (wlen == 0 || memcmp(got->data, want, wlen) == 0);
        free(want);
        if (!same)
            return pbjson_fail(c, "bytes differ (got %zu bytes, want %zu)", got->len, wlen);
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;

        if (v == NULL)
            return sub == NULL ? 0 : pbjson_fail(c, "sub-message present, JSON has none");
        if (sub == NULL)
            return pbjson_fail(c, "sub-message absent");
        return pbjson_message(c, f->descriptor, sub, v);
    }
    default:
        return pbjson_fail(c, "field type %d not handled", (int)f->type);
    }
}

/* A map field: n entries (messages with key = 1, value = 2) against a JSON object. */
static int pbjson_map(struct pbjson_ctx *c, const ProtobufCFieldDescriptor *f,
                      const ProtobufCMessage *const *entries, size_t n, const json_t *obj)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = protobuf_c_message_descriptor_get_field(ed, 1);
    const ProtobufCFieldDescriptor *vf = protobuf_c_message_descriptor_get_field(ed, 2);
    size_t i, k, plen = strlen(c->path);

    if (kf == NULL || vf == NULL || kf->type != PROTOBUF_C_TYPE_STRING)
        return pbjson_fail(c, "JSON object for a repeated field that is not a string map");
    if (json_object_size(obj) != n)
        return pbjson_fail(c, "map has %zu entries, want %zu", n, json_object_size(obj));
    for (i = 0; i < n; i++) {
        const char *key = *(const char *const *)((const char *)entries[i] + kf->offset);
        const json_t *want;

        key = key ? key : "";
        for (k = 0; k < i; k++) {
            const char *prev = *(const char *const *)((const char *)entries[k] + kf->offset);
            if (strcmp(prev ? prev : "", key) == 0)
                return pbjson_fail(c, "map key \"%s\" twice", key);
        }
        want = json_object_get(obj, key);
        if (want == NULL)
            return pbjson_fail(c, "map key \"%s\" not expected", key);
        snprintf(c->path + plen, sizeof(c->path) - plen, "[\"%s\"]", key);
        if (pbjson_value(c, vf, (const char *)entries[i] + vf->offset, want) < 0)
            return -1;
        c->path[plen] = '\0';
    }
    return 0;
}

static int pbjson_field(struct pbjson_ctx *c, const ProtobufCFieldDescriptor *f,
                        const ProtobufCMessage *m, const json_t *v)
{
    const char *base = (const char *)m;
    size_t plen = strlen(c->path), i, n, esz;
    const char *arr;

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        n = *(const size_t *)(base + f->quantifier_offset);
        arr = *(const char *const *)(base + f->offset);
        if (v != NULL && json_is_object(v) && f->type == PROTOBUF_C_TYPE_MESSAGE)
            return pbjson_map(c, f, (const ProtobufCMessage *const *)(const void *)arr, n, v);
        if (v != NULL && !json_is_array(v))
            return pbjson_fail(c, "expected JSON is not an array");
        if (n != (v ? json_array_size(v) : 0))
            return pbjson_fail(c, "%zu elements, want %zu", n, v ? json_array_size(v) : 0);
        esz = pbjson_elem_size(f->type);
        for (i = 0; i < n; i++) {
            snprintf(c->path + plen, sizeof(c->path) - plen, "[%zu]", i);
            if (pbjson_value(c, f, arr + i * esz, json_array_get(v, i)) < 0)
                return -1;
        }
        c->path[plen] = '\0';
        return 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);

        if (which != f->id)
            return v == NULL ? 0 : pbjson_fail(c, "oneof member not set (case %u)", which);
        if (v == NULL)
            return pbjson_fail(c, "oneof member set, JSON has none");
        return pbjson_value(c, f, base + f->offset, v);
    }
    if (f->label != PROTOBUF_C_LABEL_NONE)
        return pbjson_fail(c, "label %d not handled (proto3 only)", (int)f->label);
    return pbjson_value(c, f, base + f->offset, v);
}

static int pbjson_message(struct pbjson_ctx *c, const ProtobufCMessageDescriptor *d,
                          const ProtobufCMessage *m, const json_t *j)
{
    size_t plen = strlen(c->path), i;
    const char *key;
    const json_t *v;
    char name[128];

    if (!json_is_object(j))
        return pbjson_fail(c, "expected JSON for %s is not an object", d->name);
    if (m->descriptor != d)
        return pbjson_fail(c, "message is a %s, want %s", m->descriptor->name, d->name);
    json_object_foreach((json_t *)j, key, v)
    {
        for (i = 0; i < d->n_fields; i++) {
            pbjson_camel(d->fields[i].name, name, sizeof(name));
            if (strcmp(name, key) == 0)
                break;
        }
        if (i == d->n_fields)
            return pbjson_fail(c, "JSON names \"%s\", not a field of %s", key, d->name);
    }
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        pbjson_camel(f->name, name, sizeof(name));
        snprintf(c->path + plen, sizeof(c->path) - plen, "%s%s", plen ? "." : "", name);
        if (pbjson_field(c, f, m, json_object_get(j, name)) < 0)
            return -1;
        c->path[plen] = '\0';
    }
    return 0;
}

int pbjson_equal(const ProtobufCMessage *msg, const json_t *j, char *err, size_t errlen)
{
    struct pbjson_ctx c = {err, errlen, ""};

    if (errlen > 0)
        err[0] = '\0';
    return pbjson_message(&c, msg->descriptor, msg, j);
}
