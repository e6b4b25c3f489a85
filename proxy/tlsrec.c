/*
 * tlsrec - the TLS 1.3 record layer after OpenSSL's handshake (tlsrec.h).
 */
#include "tlsrec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#define TLSREC_TAG 16
#define TLSREC_IV 12
#define TLSREC_SECRET_MAX 48 /* SHA-384 */

enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
enum { HS_NEW_SESSION_TICKET = 4, HS_KEY_UPDATE = 24 };

/* What the key log callback keeps per SSL until the handshake is done. */
struct tlsrec_secrets {
    unsigned char client[TLSREC_SECRET_MAX], server[TLSREC_SECRET_MAX];
    size_t client_len, server_len;
};

struct tlsrec_dir {
    EVP_CIPHER_CTX *ctx;
    unsigned char secret[TLSREC_SECRET_MAX];
    unsigned char iv[TLSREC_IV];
    uint64_t seq;
};

struct sg_tlsrec {
    int client;           /* connect side: the server's session tickets are accepted */
    uint64_t rekey_after; /* records per write key (SG_TLSREC_REKEY_AFTER) */
    const EVP_CIPHER *cipher;
    const char *digest;
    size_t key_len, hash_len;
    struct tlsrec_dir rd, wr;
};

static int tlsrec_index = -1;
static pthread_once_t tlsrec_once = PTHREAD_ONCE_INIT;

static void tlsrec_secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL)
        OPENSSL_clear_free(ptr, sizeof(struct tlsrec_secrets));
}

static void tlsrec_index_init(void)
{
    tlsrec_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tlsrec_secrets_free);
}

void sg_tlsrec_keylog(const SSL *ssl, const char *line)
{
    static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ", sv[] = "SERVER_TRAFFIC_SECRET_0 ";
    int client;
    if (strncmp(line, cl, sizeof(cl) - 1) == 0)
        client = 1;
    else if (strncmp(line, sv, sizeof(sv) - 1) == 0)
        client = 0;
    else
        return; /* handshake secrets: not needed */
    pthread_once(&tlsrec_once, tlsrec_index_init);
    if (tlsrec_index < 0)
        return;
    /* "<label> <client random, hex> <secret, hex>" */
    const char *p = strchr(line + sizeof(cl) - 1, ' ');
    if (p == NULL)
        return;
    p++;
    size_t hex = strlen(p);
    if (hex % 2 != 0 || hex / 2 > TLSREC_SECRET_MAX || hex == 0)
        return;
    struct tlsrec_secrets *s = SSL_get_ex_data(ssl, tlsrec_index);
    if (s == NULL) {
        if ((s = OPENSSL_zalloc(sizeof(*s))) == NULL)
            return;
        /* The SSL is ours (conn.c's); the callback is only handed it const. */
        if (SSL_set_ex_data((SSL *)ssl, tlsrec_index, s) != 1) {
            OPENSSL_free(s);
            return;
        }
    }
    unsigned char *dst = client ? s->client : s->server;
    for (size_t i = 0; i < hex / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)p[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(dst, TLSREC_SECRET_MAX);
            return;
        }
        dst[i] = (unsigned char)(hi << 4 | lo);
    }
    if (client)
        s->client_len = hex / 2;
    else
        s->server_len = hex / 2;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 section 7.1. */
static int expand_label(const struct sg_tlsrec *r, const unsigned char *secret, const char *label,
                        unsigned char *out, size_t len)
{
    unsigned char info[2 + 1 + 255 + 1];
    size_t ll = 6 + strlen(label), n = 0;
    info[n++] = (unsigned char)(len >> 8);
    info[n++] = (unsigned char)len;
    info[n++] = (unsigned char)ll;
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, ll - 6);
    n += ll;
    info[n++] = 0; /* empty context */

    int ok = 0, mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kctx != NULL) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)r->digest, 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, r->hash_len),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
            OSSL_PARAM_construct_end(),
        };
        ok = EVP_KDF_derive(kctx, out, len, params) == 1;
    }
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

/* Key and IV of d from d->secret; the sequence starts again at 0. */
static int dir_keys(struct sg_tlsrec *r, struct tlsrec_dir *d, int enc)
{
    unsigned char key[32];
    int rc = -1;
    if (expand_label(r, d->secret, "key", key, r->key_len) == 0 &&
        expand_label(r, d->secret, "iv", d->iv, TLSREC_IV) == 0 &&
        EVP_CipherInit_ex(d->ctx, NULL, NULL, key, NULL, enc) == 1)
        rc = 0;
    OPENSSL_cleanse(key, sizeof(key));
    d->seq = 0;
    return rc;
}

/* The next secret of d (KeyUpdate), then its keys. */
static int dir_update(struct sg_tlsrec *r, struct tlsrec_dir *d, int enc)
{
    unsigned char next[TLSREC_SECRET_MAX];
    int rc = expand_label(r, d->secret, "traffic upd", next, r->hash_len);
    if (rc == 0) {
        memcpy(d->secret, next, r->hash_len);
        rc = dir_keys(r, d, enc);
    }
    OPENSSL_cleanse(next, sizeof(next));
    return rc;
}

struct sg_tlsrec *sg_tlsrec_new(unsigned suite, const unsigned char *read_secret,
                                const unsigned char *write_secret, size_t secret_len, int client)
{
    struct sg_tlsrec *r = OPENSSL_zalloc(sizeof(*r));
    if (r == NULL)
        return NULL;
    r->client = client != 0;
    r->rekey_after = SG_TLSREC_REKEY_AFTER;
    switch (suite) {
    case 0x1301:
        r->cipher = EVP_aes_128_gcm(), r->digest = "SHA256", r->key_len = 16, r->hash_len = 32;
        break;
    case 0x1302:
        r->cipher = EVP_aes_256_gcm(), r->digest = "SHA384", r->key_len = 32, r->hash_len = 48;
        break;
    case 0x1303:
        r->cipher = EVP_chacha20_poly1305(), r->digest = "SHA256", r->key_len = 32,
        r->hash_len = 32;
        break;
    default:
        goto fail;
    }
    if (secret_len != r->hash_len)
        goto fail;
    memcpy(r->rd.secret, read_secret, r->hash_len);
    memcpy(r->wr.secret, write_secret, r->hash_len);
    if ((r->rd.ctx = EVP_CIPHER_CTX_new()) == NULL || (r->wr.ctx = EVP_CIPHER_CTX_new()) == NULL)
        goto fail;
    if (EVP_CipherInit_ex(r->rd.ctx, r->cipher, NULL, NULL, NULL, 0) != 1 ||
        EVP_CipherInit_ex(r->wr.ctx, r->cipher, NULL, NULL, NULL, 1) != 1 ||
        dir_keys(r, &r->rd, 0) != 0 || dir_keys(r, &r->wr, 1) != 0)
        goto fail;
    return r;
fail:
    sg_tlsrec_free(r);
    ERR_clear_error();
    return NULL;
}

struct sg_tlsrec *sg_tlsrec_take(SSL *ssl, uint64_t write_records)
{
    pthread_once(&tlsrec_once, tlsrec_index_init);
    if (tlsrec_index < 0)
        return NULL;
    struct tlsrec_secrets *s = SSL_get_ex_data(ssl, tlsrec_index);
    if (s != NULL)
        SSL_set_ex_data(ssl, tlsrec_index, NULL);
    struct sg_tlsrec *r = NULL;
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int server = SSL_is_server(ssl);
    /* Each end reads what the other wrote. */
    if (s != NULL && c != NULL && SSL_version(ssl) == TLS1_3_VERSION && !SSL_has_pending(ssl) &&
        s->client_len == s->server_len &&
        (r = sg_tlsrec_new(SSL_CIPHER_get_protocol_id(c), server ? s->client : s->server,
                           server ? s->server : s->client, s->client_len, !server)) != NULL)
        r->wr.seq = write_records;
    if (s != NULL)
        OPENSSL_clear_free(s, sizeof(*s));
    ERR_clear_error();
    return r;
}

void sg_tlsrec_free(struct sg_tlsrec *r)
{
    if (r == NULL)
        return;
    EVP_CIPHER_CTX_free(r->rd.ctx);
    EVP_CIPHER_CTX_free(r->wr.ctx);
    OPENSSL_clear_free(r, sizeof(*r));
}

/* The nonce of the record d->seq (section 5.3). -1 when the sequence is
 * spent (2^64 records: never in practice). */
static int dir_nonce(const struct tlsrec_dir *d, unsigned char nonce[TLSREC_IV])
{
    if (d->seq == UINT64_MAX)
        return -1;
    memcpy(nonce, d->iv, TLSREC_IV);
    for (int i = 0; i < 8; i++)
        nonce[TLSREC_IV - 1 - i] ^= (unsigned char)(d->seq >> (8 * i));
    return 0;
}

static size_t seal_type(struct sg_tlsrec *r, const struct iovec *iov, int iovcnt, size_t len,
                        unsigned char type, unsigned char *out)
{
    struct tlsrec_dir *d = &r->wr;
    unsigned char nonce[TLSREC_IV];
    size_t body = len + 1 + TLSREC_TAG;
    int n;
    if (len > SG_TLSREC_MAX_PLAIN || dir_nonce(d, nonce) != 0)
        return 0;
    out[0] = CT_APPDATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (unsigned char)(body >> 8);
    out[4] = (unsigned char)body;
    if (EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(d->ctx, NULL, &n, out, SG_TLSREC_HEADER) != 1)
        return 0;
    unsigned char *p = out + SG_TLSREC_HEADER;
    size_t left = len;
    for (int i = 0; i < iovcnt && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        if (k == 0)
            continue;
        if (EVP_EncryptUpdate(d->ctx, p, &n, iov[i].iov_base, (int)k) != 1)
            return 0;
        p += n;
        left -= k;
    }
    if (left != 0 || EVP_EncryptUpdate(d->ctx, p, &n, &type, 1) != 1)
        return 0;
    p += n;
    if (EVP_EncryptFinal_ex(d->ctx, p, &n) != 1)
        return 0;
    p += n;
    if (EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG, p) != 1)
        return 0;
    d->seq++;
    return SG_TLSREC_HEADER + body;
}

size_t sg_tlsrec_seal_inner(struct sg_tlsrec *r, unsigned char type, const unsigned char *p,
                            size_t len, unsigned char *out)
{
    struct iovec v = {(void *)p, len};
    return seal_type(r, &v, 1, len, type, out);
}

size_t sg_tlsrec_seal(struct sg_tlsrec *r, const struct iovec *iov, int iovcnt, size_t len,
                      unsigned char *out)
{
    size_t pre = 0;
    if (len == 0)
        return 0;
    if (r->wr.seq >= r->rekey_after && (pre = sg_tlsrec_seal_key_update(r, out)) == 0)
        return 0;
    size_t n = seal_type(r, iov, iovcnt, len, CT_APPDATA, out + pre);
    return n == 0 ? 0 : pre + n;
}

void sg_tlsrec_set_rekey_after(struct sg_tlsrec *r, uint64_t records)
{
    r->rekey_after = records;
}

size_t sg_tlsrec_seal_key_update(struct sg_tlsrec *r, unsigned char *out)
{
    unsigned char msg[5] = {HS_KEY_UPDATE, 0, 0, 1, 0}; /* update_not_requested */
    struct iovec v = {msg, sizeof(msg)};
    size_t n = seal_type(r, &v, 1, sizeof(msg), CT_HANDSHAKE, out);
    if (n == 0 || dir_update(r, &r->wr, 1) != 0)
        return 0;
    return n;
}

size_t sg_tlsrec_record_len(const unsigned char *hdr)
{
    size_t body = (size_t)hdr[3] << 8 | hdr[4];
    /* After the handshake every record is an opaque application_data one
     * (no ChangeCipherSpec, no plaintext alert), and at least carries its
     * inner content type and the tag. */
    if (hdr[0] != CT_APPDATA || hdr[1] != 3 || hdr[2] != 3 || body < 1 + TLSREC_TAG ||
        body > SG_TLSREC_MAX_PLAIN + 256)
        return 0;
    return SG_TLSREC_HEADER + body;
}

enum sg_tlsrec_open sg_tlsrec_open(struct sg_tlsrec *r, const unsigned char *rec, size_t rec_len,
                                   unsigned char *out, size_t *out_len, int *reply)
{
    struct tlsrec_dir *d = &r->rd;
    unsigned char nonce[TLSREC_IV];
    size_t ct = rec_len - SG_TLSREC_HEADER - TLSREC_TAG;
    int n;
    *out_len = 0;
    if (sg_tlsrec_record_len(rec) != rec_len || dir_nonce(d, nonce) != 0)
        return SG_TLSREC_BAD;
    if (EVP_DecryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(d->ctx, NULL, &n, rec, SG_TLSREC_HEADER) != 1 ||
        EVP_DecryptUpdate(d->ctx, out, &n, rec + SG_TLSREC_HEADER, (int)ct) != 1 ||
        EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG,
                            (void *)(rec + SG_TLSREC_HEADER + ct)) != 1 ||
        EVP_DecryptFinal_ex(d->ctx, out + n, &n) != 1) {
        ERR_clear_error();
        return SG_TLSREC_BAD; /* bad_record_mac */
    }
    d->seq++;
    /* The inner content type is the last non-zero byte (section 5.2). */
    size_t i = ct;
    while (i > 0 && out[i - 1] == 0)
        i--;
    if (i == 0)
        return SG_TLSREC_BAD;
    unsigned char type = out[--i];
    if (type == CT_APPDATA) {
        *out_len = i;
        return SG_TLSREC_DATA;
    }
    if (type == CT_ALERT) {
        if (i != 2)
            return SG_TLSREC_BAD;
        if (out[1] == 0) /* close_notify */
            return SG_TLSREC_CLOSE;
        return out[1] == 90 ? SG_TLSREC_CONTROL : SG_TLSREC_BAD; /* user_canceled: ignored */
    }
    if (type != CT_HANDSHAKE)
        return SG_TLSREC_BAD;
    /* Post-handshake messages: KeyUpdate, and on the connect side the
     * server's NewSessionTicket (not kept: links reconnect rarely). No
     * post-handshake authentication is ever asked for. Messages do not span
     * records here, and a KeyUpdate ends its record: the next record is
     * under the next key (section 4.6.3). */
    size_t at = 0;
    if (i == 0)
        return SG_TLSREC_BAD; /* no empty handshake records (section 5.1) */
    while (at < i) {
        if (i - at < 4)
            return SG_TLSREC_BAD;
        size_t mlen = (size_t)out[at + 1] << 16 | (size_t)out[at + 2] << 8 | out[at + 3];
        if (mlen > i - at - 4)
            return SG_TLSREC_BAD;
        if (out[at] == HS_NEW_SESSION_TICKET && r->client) {
            at += 4 + mlen;
            continue;
        }
        if (out[at] != HS_KEY_UPDATE || mlen != 1 || at + 5 != i || out[at + 4] > 1)
            return SG_TLSREC_BAD;
        if (dir_update(r, d, 0) != 0)
            return SG_TLSREC_BAD;
        if (out[at + 4] == 1)
            *reply = 1;
        break;
    }
    return SG_TLSREC_CONTROL;
}
