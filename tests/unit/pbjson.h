/*
 * pbjson - compare a protobuf-c message with a message written in protobuf's
 * canonical proto3 JSON mapping, driven by the protobuf-c descriptors alone
 * (no per-message code), for the golden vectors of proto/testdata/.
 */
#ifndef SG_TEST_PBJSON_H
#define SG_TEST_PBJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/*
 * 0 if msg holds exactly what the JSON object j says: every field named in j
 * has that value, every field j leaves out holds its default (0, "", empty,
 * absent sub-message), oneof cases match, maps compare as maps. JSON names
 * that are not fields of the message are a mismatch. On a mismatch returns -1
 * with "path: reason" in err.
 */
int pbjson_equal(const ProtobufCMessage *msg, const json_t *j, char *err, size_t errlen);

/* JSON value of an enum (name or number; NULL = 0) into *out. 0 or -1. */
int pbjson_enum(const ProtobufCEnumDescriptor *d, const json_t *v, int *out);
/* JSON uint64 / int64 (decimal string or integer; NULL = 0) into *out. */
int pbjson_u64(const json_t *v, uint64_t *out);
int pbjson_i64(const json_t *v, int64_t *out);
/*
 * Standard base64 with padding (proto3 JSON bytes; NULL = empty) into a
 * malloc'ed buffer the caller frees (never NULL on success). 0 or -1.
 */
int pbjson_bytes(const json_t *v, uint8_t **out, size_t *len);
/* Lowercase or uppercase hex into a malloc'ed buffer the caller frees. */
int pbjson_hex(const char *hex, uint8_t **out, size_t *len);

#endif
