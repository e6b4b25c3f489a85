/*
 * tlsrec - the TLS 1.3 record layer (RFC 8446 section 5) for a connection
 * whose handshake OpenSSL has finished, so that the SSL object (about 20 kB
 * per connection once the peer's certificates are in it) can be freed and
 * an established connection keeps only its two AEAD contexts.
 *
 * OpenSSL still does everything that needs judgement: the handshake, the
 * key schedule, certificate verification. This file takes the two
 * application traffic secrets OpenSSL derived (handed over through the
 * context's key log callback, the documented way to export them) and from
 * then on seals and opens records: AES-128-GCM, AES-256-GCM or
 * ChaCha20-Poly1305 with the per-record nonce of section 5.3, the inner
 * content type of section 5.2, KeyUpdate (section 4.6.3) both ways, and
 * close_notify. Anything else after the handshake (another handshake
 * message, a fatal alert, a record that does not authenticate) is an error
 * and the connection is closed.
 *
 * Kernel TLS would do the same job but keeps the SSL object (and is not
 * used); conn.c uses this for every TLS 1.3 connection (clients', and
 * links to Redis). TLS 1.2 connections keep their SSL object.
 */
#ifndef SG_TLSREC_H
#define SG_TLSREC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

#define SG_TLSREC_HEADER 5
#define SG_TLSREC_MAX_PLAIN 16384 /* 2^14 */
/* Header, inner content type and AEAD tag around a record's plaintext. */
#define SG_TLSREC_OVERHEAD (SG_TLSREC_HEADER + 1 + 16)
/* Largest record a peer may send: 2^14 + 256 bytes of ciphertext. */
#define SG_TLSREC_MAX_RECORD (SG_TLSREC_HEADER + SG_TLSREC_MAX_PLAIN + 256)

struct sg_tlsrec;

/*
 * The key log callback to install on a context
 * (SSL_CTX_set_keylog_callback): keeps the application traffic secrets of
 * each connection with its SSL object until sg_tlsrec_take (or SSL_free)
 * wipes them.
 */
void sg_tlsrec_keylog(const SSL *ssl, const char *line);

/*
 * After SSL_do_handshake returned 1: the record layer that carries on from
 * it, or NULL when this connection cannot be taken over (not TLS 1.3, a
 * cipher suite not handled here, secrets not logged, OpenSSL holding
 * unread bytes). write_records: how many records OpenSSL already sealed
 * with our application key (a server's session tickets; 0 for a client).
 * The secrets kept for ssl are wiped either way; the caller frees ssl.
 */
struct sg_tlsrec *sg_tlsrec_take(SSL *ssl, uint64_t write_records);
/*
 * A record layer from raw traffic secrets of secret_len bytes (the suite's
 * hash length): suite is the TLS cipher suite number (0x1301 AES-128-GCM,
 * 0x1302 AES-256-GCM, 0x1303 ChaCha20-Poly1305); client: the connect side
 * (it accepts the server's NewSessionTicket messages). sg_tlsrec_take uses
 * it; tests and fuzz targets make both ends of a connection with it. NULL
 * for another suite, a wrong length, or no memory.
 */
struct sg_tlsrec *sg_tlsrec_new(unsigned suite, const unsigned char *read_secret,
                                const unsigned char *write_secret, size_t secret_len, int client);
/* Wipes the keys. Accepts NULL. */
void sg_tlsrec_free(struct sg_tlsrec *r);

/* Records sealed under one write key before we move to the next with a
 * KeyUpdate of our own: under AES-GCM's 2^24.5 (RFC 8446 section 5.5). */
#define SG_TLSREC_REKEY_AFTER (1ull << 24)
/* Room sg_tlsrec_seal needs for len bytes: a KeyUpdate may go first. */
#define SG_TLSREC_SEAL_ROOM(len) ((len) + 2 * SG_TLSREC_OVERHEAD + 5)

/*
 * Seal len bytes (1..SG_TLSREC_MAX_PLAIN, gathered from iov) as one
 * application_data record into out, which has room for
 * SG_TLSREC_SEAL_ROOM(len) bytes; when the write key has sealed its share
 * of records, a KeyUpdate record goes first and the record is sealed
 * under the next key. Returns the bytes written, or 0 on failure.
 */
size_t sg_tlsrec_seal(struct sg_tlsrec *r, const struct iovec *iov, int iovcnt, size_t len,
                      unsigned char *out);
/* Tests: move to the next write key after this many records instead. */
void sg_tlsrec_set_rekey_after(struct sg_tlsrec *r, uint64_t records);

/* One record of any inner content type (len may be 0): a peer's records in
 * tests and fuzz targets. Same contract as sg_tlsrec_seal otherwise. */
size_t sg_tlsrec_seal_inner(struct sg_tlsrec *r, unsigned char type, const unsigned char *p,
                            size_t len, unsigned char *out);

/* The length of the record whose header starts at hdr (5 bytes), or 0
 * when the header is not one a TLS 1.3 peer may send after its Finished. */
size_t sg_tlsrec_record_len(const unsigned char *hdr);

enum sg_tlsrec_open {
    SG_TLSREC_DATA,    /* *out_len bytes of application data at out */
    SG_TLSREC_CONTROL, /* a KeyUpdate or ignorable alert, handled */
    SG_TLSREC_CLOSE,   /* close_notify */
    SG_TLSREC_BAD      /* failed to authenticate, or not allowed here */
};

/*
 * Open the whole record rec (rec_len bytes, from sg_tlsrec_record_len)
 * into out (room for rec_len - SG_TLSREC_HEADER - 16 bytes). A KeyUpdate
 * that asks for ours sets *reply to 1: the caller seals one with
 * sg_tlsrec_seal_key_update before anything else it writes from now on.
 */
enum sg_tlsrec_open sg_tlsrec_open(struct sg_tlsrec *r, const unsigned char *rec, size_t rec_len,
                                   unsigned char *out, size_t *out_len, int *reply);

/* Seal our KeyUpdate (update_not_requested) into out (room for
 * SG_TLSREC_OVERHEAD + 5 bytes) and move to the next write key. Returns
 * the record's length, or 0 on failure. */
size_t sg_tlsrec_seal_key_update(struct sg_tlsrec *r, unsigned char *out);

#endif
