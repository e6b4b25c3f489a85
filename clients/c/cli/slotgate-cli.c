/*
 * slotgate-cli - command-line client for slotgate, in the style of redis-cli.
 *
 * Parses redis-cli-like flags (anywhere on the line), opens one connection
 * with libslotgate, runs one command and prints the reply the way redis-cli
 * would. Any failure is one "slotgate-cli: ..." line on stderr and a
 * non-zero exit status. When whatever reads the output stops reading
 * (`slotgate-cli stats | head -1`), it stops quietly with status 141, as
 * a tool killed by SIGPIPE does (SIGPIPE itself is ignored: libslotgate
 * writes to its socket).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "slotgate.h"

#define SG_CLI_EXIT_ERROR 1
#define SG_CLI_EXIT_USAGE 2

struct sg_cli {
    struct sg_client_options opt;
    const char *keyspace;
    uint64_t ttl_ms;
    int has_ttl;
    int cond;
    int argc; /* positional arguments: command and its operands */
    char **argv;
    struct sg_client *client;
};

struct sg_cli_command {
    const char *name;
    int min_args; /* operands after the command name */
    int max_args; /* -1: unbounded */
    int (*run)(struct sg_cli *cli);
    const char *usage;
};

static int sg_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the single error line; returns status for `return sg_cli_fail(...)`. */
static int sg_cli_fail(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("slotgate-cli: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

static void sg_cli_usage(void)
{
    fputs("Usage: slotgate-cli [OPTIONS] COMMAND [ARGS...]\n"
          "\n"
          "Options (may appear anywhere):\n"
          "  -h HOST            server host (default 127.0.0.1)\n"
          "  -p PORT            server port (default 7420)\n"
          "  --tls              use TLS\n"
          "  --cacert FILE      CA certificate to verify the server\n"
          "  --cert FILE        client certificate (mTLS)\n"
          "  --key FILE         client private key (mTLS)\n"
          "  --sni NAME         server name to send and verify (default: host)\n"
          "  --insecure         skip server certificate verification\n"
          "  -a, --token TOKEN  authentication token\n"
          "  -k KEYSPACE        keyspace (default: server default)\n"
          "  --timeout MS       connect and call timeout (default 5000)\n"
          "  --ttl MS           TTL for set, mset, setlease\n"
          "  --nx | --xx        set only if absent | present\n"
          "  --                 end of options\n"
          "  --help             show this help\n"
          "\n"
          "Commands:\n"
          "  ping\n"
          "  get KEY\n"
          "  set KEY VALUE [--ttl MS] [--nx|--xx]\n"
          "  del KEY\n"
          "  expire KEY MS\n"
          "  mget KEY [KEY...]\n"
          "  mset KEY VALUE [KEY VALUE...] [--ttl MS]\n"
          "  mdel KEY [KEY...]\n"
          "  stats\n"
          "  invalidate PATTERN\n"
          "  getlease KEY\n"
          "  setlease KEY VALUE LEASE [--ttl MS]\n"
          "  setver KEY VALUE VERSION\n"
          "  getver KEY\n",
          stdout);
}

/* Strict unsigned decimal parse; rejects signs, blanks and trailing junk. */
static int sg_cli_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/*
 * Split argv into options (filled into cli) and positionals (left in
 * cli->argv, in order). Returns 0, 1 after --help, or -1 after printing the
 * usage error.
 */
static int sg_cli_parse(struct sg_cli *cli, int argc, char **argv)
{
    int i, opts_done = 0;
    uint64_t v;
    const char *a;

    cli->argv = calloc((size_t)argc + 1, sizeof(*cli->argv));
    if (cli->argv == NULL)
        return sg_cli_fail(-1, "out of memory");
    for (i = 1; i < argc; i++) {
        a = argv[i];
        if (opts_done || a[0] != '-' || a[1] == '\0') {
            cli->argv[cli->argc++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (strcmp(a, "--help") == 0) {
            sg_cli_usage();
            return 1;
        } else if (strcmp(a, "--tls") == 0) {
            cli->opt.tls = 1;
        } else if (strcmp(a, "--insecure") == 0) {
            cli->opt.insecure = 1;
        } else if (strcmp(a, "--nx") == 0 || strcmp(a, "--xx") == 0) {
            int cond = a[2] == 'n' ? SG_COND_NX : SG_COND_XX;

            if (cli->cond != SG_COND_NONE && cli->cond != cond)
                return sg_cli_fail(-1, "--nx and --xx are mutually exclusive");
            cli->cond = cond;
        } else {
            static const char *const with_value[] = {"-h",    "-p",        "--cacert", "--cert",
                                                     "--key", "--sni",     "-a",       "--token",
                                                     "-k",    "--timeout", "--ttl",    NULL};
            const char *val;
            int j;

            for (j = 0; with_value[j] && strcmp(a, with_value[j]) != 0; j++)
                ;
            if (with_value[j] == NULL)
                return sg_cli_fail(-1, "unknown option '%s' (try --help)", a);
            if (i + 1 >= argc)
                return sg_cli_fail(-1, "option '%s' needs a value", a);
            val = argv[++i];
            if (strcmp(a, "-h") == 0) {
                cli->opt.host = val;
            } else if (strcmp(a, "-p") == 0) {
                if (sg_cli_parse_u64(val, &v) < 0 || v == 0 || v > 65535)
                    return sg_cli_fail(-1, "invalid port '%s'", val);
                cli->opt.port = (int)v;
            } else if (strcmp(a, "--cacert") == 0) {
                cli->opt.cacert = val;
            } else if (strcmp(a, "--cert") == 0) {
                cli->opt.cert = val;
            } else if (strcmp(a, "--key") == 0) {
                cli->opt.key = val;
            } else if (strcmp(a, "--sni") == 0) {
                cli->opt.sni = val;
            } else if (strcmp(a, "-a") == 0 || strcmp(a, "--token") == 0) {
                cli->opt.auth_token = val;
                cli->opt.auth_token_len = strlen(val);
            } else if (strcmp(a, "-k") == 0) {
                cli->keyspace = val;
            } else if (strcmp(a, "--timeout") == 0) {
                if (sg_cli_parse_u64(val, &v) < 0 || v == 0 || v > 86400000)
                    return sg_cli_fail(-1, "invalid timeout '%s'", val);
                cli->opt.timeout_ms = (int)v;
            } else {
                if (sg_cli_parse_u64(val, &cli->ttl_ms) < 0)
                    return sg_cli_fail(-1, "invalid TTL '%s'", val);
                cli->has_ttl = 1;
            }
        }
    }
    return 0;
}

/* Write bytes as redis-cli does for a tty: "..." with C-style escapes. */
static void sg_cli_print_quoted(const uint8_t *p, size_t len)
{
    size_t i;

    putchar('"');
    for (i = 0; i < len; i++) {
        switch (p[i]) {
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\a':
            fputs("\\a", stdout);
            break;
        case '\b':
            fputs("\\b", stdout);
            break;
        default:
            if (p[i] >= 0x20 && p[i] < 0x7f)
                putchar(p[i]);
            else
                printf("\\x%02x", p[i]);
        }
    }
    putchar('"');
}

/* One request of the given op with the CLI's keyspace. */
static struct sg_request *sg_cli_request(struct sg_cli *cli, enum sg_op op)
{
    struct sg_request *r = sg_request_new(op);

    if (r != NULL && cli->keyspace)
        sg_request_keyspace(r, cli->keyspace);
    return r;
}

static void sg_cli_add_key(struct sg_request *r, const char *key)
{
    sg_request_add_key(r, key, strlen(key));
}

/*
 * Send r and wait for its response (r is freed). Returns 0 with *out set
 * when the server answered with a non-error code (below 100); otherwise
 * prints the error line and returns the exit status.
 */
static int sg_cli_call(struct sg_cli *cli, struct sg_request *r, struct sg_response **out)
{
    int rc = sg_call(cli->client, r, out), code;

    sg_request_free(r);
    if (rc < 0)
        return sg_cli_fail(SG_CLI_EXIT_ERROR, "%s: %s", sg_code_name(cli->client->err),
                           cli->client->errstr);
    code = (*out)->code;
    if (code >= 100) {
        int status = (*out)->message[0] ? sg_cli_fail(SG_CLI_EXIT_ERROR, "%s: %s",
                                                      sg_code_name(code), (*out)->message)
                                        : sg_cli_fail(SG_CLI_EXIT_ERROR, "%s", sg_code_name(code));

        sg_response_free(*out);
        *out = NULL;
        return status;
    }
    return 0;
}

static int sg_cli_ping(struct sg_cli *cli)
{
    struct sg_response *resp;
    int rc = sg_cli_call(cli, sg_cli_request(cli, SG_OP_PING), &resp);

    if (rc == 0)
        puts("PONG");
    sg_response_free(resp);
    return rc;
}

static int sg_cli_get(struct sg_cli *cli)
{
    struct sg_request *r = sg_cli_request(cli, SG_OP_GET);
    struct sg_response *resp;
    int rc;

    sg_cli_add_key(r, cli->argv[1]);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    if (resp->code == SG_NOT_FOUND) {
        puts("(nil)");
    } else if (isatty(STDOUT_FILENO)) {
        sg_cli_print_quoted(resp->value, resp->value_len);
        putchar('\n');
    } else {
        if (resp->value_len)
            fwrite(resp->value, 1, resp->value_len, stdout);
        putchar('\n');
    }
    sg_response_free(resp);
    return 0;
}

static int sg_cli_set(struct sg_cli *cli)
{
    struct sg_request *r = sg_cli_request(cli, SG_OP_SET);
    struct sg_response *resp;
    int rc;

    sg_cli_add_key(r, cli->argv[1]);
    sg_request_add_value(r, cli->argv[2], strlen(cli->argv[2]));
    sg_request_ttl(r, cli->ttl_ms);
    sg_request_condition(r, cli->cond);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    puts(resp->code == SG_OK ? "OK" : "(nil)");
    sg_response_free(resp);
    return 0;
}

/* DELETE and EXPIRE: (integer) 1 when the key existed, 0 on NOT_FOUND. */
static int sg_cli_key_integer(struct sg_cli *cli, int op)
{
    struct sg_request *r = sg_cli_request(cli, op);
    struct sg_response *resp;
    uint64_t ttl;
    int rc;

    sg_cli_add_key(r, cli->argv[1]);
    if (op == SG_OP_EXPIRE) {
        if (sg_cli_parse_u64(cli->argv[2], &ttl) < 0) {
            sg_request_free(r);
            return sg_cli_fail(SG_CLI_EXIT_USAGE, "invalid TTL '%s'", cli->argv[2]);
        }
        sg_request_ttl(r, ttl);
    }
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    if (resp->code == SG_NOT_FOUND)
        puts("(integer) 0");
    else if (op == SG_OP_DELETE && resp->count > 0)
        printf("(integer) %lld\n", (long long)resp->count);
    else
        puts("(integer) 1");
    sg_response_free(resp);
    return 0;
}

static int sg_cli_del(struct sg_cli *cli)
{
    return sg_cli_key_integer(cli, SG_OP_DELETE);
}

static int sg_cli_expire(struct sg_cli *cli)
{
    return sg_cli_key_integer(cli, SG_OP_EXPIRE);
}

/* Print one per-key result line of a batch reply; returns 1 if an error. */
static int sg_cli_print_result(size_t i, const struct sg_key_result *kr, int with_value)
{
    printf("%zu) ", i + 1);
    if (kr->code == SG_OK && with_value) {
        sg_cli_print_quoted(kr->value, kr->value_len);
        putchar('\n');
    } else if (kr->code == SG_OK) {
        puts("OK");
    } else if (kr->code == SG_NOT_FOUND || kr->code == SG_NOT_APPLIED) {
        puts("(nil)");
    } else {
        printf("(error) %s%s%s\n", sg_code_name(kr->code), kr->message[0] ? " " : "", kr->message);
        return 1;
    }
    return 0;
}

static int sg_cli_mget(struct sg_cli *cli)
{
    struct sg_request *r = sg_cli_request(cli, SG_OP_MGET);
    struct sg_response *resp;
    size_t i;
    int rc, i_arg;

    for (i_arg = 1; i_arg < cli->argc; i_arg++)
        sg_cli_add_key(r, cli->argv[i_arg]);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    for (i = 0; i < resp->n_results; i++)
        sg_cli_print_result(i, &resp->results[i], 1);
    sg_response_free(resp);
    return 0;
}

static int sg_cli_mset(struct sg_cli *cli)
{
    struct sg_request *r;
    struct sg_response *resp;
    size_t i, failed = 0;
    int rc, i_arg;

    if ((cli->argc - 1) % 2 != 0)
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "mset needs KEY VALUE pairs");
    r = sg_cli_request(cli, SG_OP_MSET);
    for (i_arg = 1; i_arg + 1 < cli->argc; i_arg += 2) {
        sg_cli_add_key(r, cli->argv[i_arg]);
        sg_request_add_value(r, cli->argv[i_arg + 1], strlen(cli->argv[i_arg + 1]));
    }
    sg_request_ttl(r, cli->ttl_ms);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    for (i = 0; i < resp->n_results; i++)
        if (resp->results[i].code != SG_OK)
            failed++;
    if (failed == 0) {
        puts("OK");
    } else {
        for (i = 0; i < resp->n_results; i++)
            sg_cli_print_result(i, &resp->results[i], 0);
    }
    rc = failed ? sg_cli_fail(SG_CLI_EXIT_ERROR, "mset: %zu of %zu keys not set", failed,
                              resp->n_results)
                : 0;
    sg_response_free(resp);
    return rc;
}

/* MDELETE and INVALIDATE: (integer) count of keys removed. */
static int sg_cli_count(struct sg_cli *cli, int op)
{
    struct sg_request *r = sg_cli_request(cli, op);
    struct sg_response *resp;
    int rc, i_arg;

    if (op == SG_OP_INVALIDATE)
        sg_request_pattern(r, cli->argv[1], strlen(cli->argv[1]));
    else
        for (i_arg = 1; i_arg < cli->argc; i_arg++)
            sg_cli_add_key(r, cli->argv[i_arg]);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    printf("(integer) %lld\n", (long long)resp->count);
    sg_response_free(resp);
    return 0;
}

static int sg_cli_mdel(struct sg_cli *cli)
{
    return sg_cli_count(cli, SG_OP_MDELETE);
}

static int sg_cli_invalidate(struct sg_cli *cli)
{
    return sg_cli_count(cli, SG_OP_INVALIDATE);
}

static const struct sg_response *sg_cli_sort_resp;

static int sg_cli_stat_cmp(const void *a, const void *b)
{
    return strcmp(sg_cli_sort_resp->stat_names[*(const size_t *)a],
                  sg_cli_sort_resp->stat_names[*(const size_t *)b]);
}

static int sg_cli_stats(struct sg_cli *cli)
{
    struct sg_response *resp;
    size_t *order, i;
    int rc = sg_cli_call(cli, sg_cli_request(cli, SG_OP_STATS), &resp);

    if (rc != 0)
        return rc;
    order = malloc((resp->n_stats ? resp->n_stats : 1) * sizeof(*order));
    if (order == NULL) {
        sg_response_free(resp);
        return sg_cli_fail(SG_CLI_EXIT_ERROR, "out of memory");
    }
    for (i = 0; i < resp->n_stats; i++)
        order[i] = i;
    sg_cli_sort_resp = resp;
    qsort(order, resp->n_stats, sizeof(*order), sg_cli_stat_cmp);
    for (i = 0; i < resp->n_stats; i++)
        printf("%s %llu\n", resp->stat_names[order[i]],
               (unsigned long long)resp->stat_values[order[i]]);
    free(order);
    sg_response_free(resp);
    return 0;
}

/* Code name, then whichever of value/lease/retry/version the reply carries. */
static void sg_cli_print_fields(const struct sg_response *resp)
{
    puts(sg_code_name(resp->code));
    if (resp->code == SG_OK && resp->value != NULL) {
        fputs("value ", stdout);
        sg_cli_print_quoted(resp->value, resp->value_len);
        putchar('\n');
    }
    if (resp->lease_len > 0) {
        fputs("lease ", stdout);
        sg_cli_print_quoted(resp->lease, resp->lease_len);
        putchar('\n');
    }
    if (resp->code == SG_LEASE_WAIT)
        printf("retry_after_ms %u\n", (unsigned)resp->retry_after_ms);
    if (resp->version != 0)
        printf("version %llu\n", (unsigned long long)resp->version);
}

static int sg_cli_getlease(struct sg_cli *cli)
{
    struct sg_request *r = sg_cli_request(cli, SG_OP_GET_OR_LEASE);
    struct sg_response *resp;
    int rc;

    sg_cli_add_key(r, cli->argv[1]);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    sg_cli_print_fields(resp);
    sg_response_free(resp);
    return 0;
}

static int sg_cli_setlease(struct sg_cli *cli)
{
    struct sg_request *r = sg_cli_request(cli, SG_OP_SET_WITH_LEASE);
    struct sg_response *resp;
    int rc;

    sg_cli_add_key(r, cli->argv[1]);
    sg_request_add_value(r, cli->argv[2], strlen(cli->argv[2]));
    sg_request_lease(r, cli->argv[3], strlen(cli->argv[3]));
    sg_request_ttl(r, cli->ttl_ms);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    sg_cli_print_fields(resp);
    sg_response_free(resp);
    return 0;
}

static int sg_cli_setver(struct sg_cli *cli)
{
    struct sg_request *r;
    struct sg_response *resp;
    uint64_t version;
    int rc;

    if (sg_cli_parse_u64(cli->argv[3], &version) < 0)
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "invalid version '%s'", cli->argv[3]);
    r = sg_cli_request(cli, SG_OP_SET_VERSIONED);
    sg_cli_add_key(r, cli->argv[1]);
    sg_request_add_value(r, cli->argv[2], strlen(cli->argv[2]));
    sg_request_version(r, version);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    sg_cli_print_fields(resp);
    sg_response_free(resp);
    return 0;
}

static int sg_cli_getver(struct sg_cli *cli)
{
    struct sg_request *r;
    struct sg_response *resp;
    int rc;

    r = sg_cli_request(cli, SG_OP_GET_VERSIONED);
    sg_cli_add_key(r, cli->argv[1]);
    rc = sg_cli_call(cli, r, &resp);
    if (rc != 0)
        return rc;
    sg_cli_print_fields(resp);
    sg_response_free(resp);
    return 0;
}

static const struct sg_cli_command sg_cli_commands[] = {
    {"ping", 0, 0, sg_cli_ping, "ping"},
    {"get", 1, 1, sg_cli_get, "get KEY"},
    {"set", 2, 2, sg_cli_set, "set KEY VALUE [--ttl MS] [--nx|--xx]"},
    {"del", 1, 1, sg_cli_del, "del KEY"},
    {"expire", 2, 2, sg_cli_expire, "expire KEY MS"},
    {"mget", 1, -1, sg_cli_mget, "mget KEY [KEY...]"},
    {"mset", 2, -1, sg_cli_mset, "mset KEY VALUE [KEY VALUE...] [--ttl MS]"},
    {"mdel", 1, -1, sg_cli_mdel, "mdel KEY [KEY...]"},
    {"stats", 0, 0, sg_cli_stats, "stats"},
    {"invalidate", 1, 1, sg_cli_invalidate, "invalidate PATTERN"},
    {"getlease", 1, 1, sg_cli_getlease, "getlease KEY"},
    {"setlease", 3, 3, sg_cli_setlease, "setlease KEY VALUE LEASE [--ttl MS]"},
    {"setver", 3, 3, sg_cli_setver, "setver KEY VALUE VERSION"},
    {"getver", 1, 1, sg_cli_getver, "getver KEY"},
};

/* Check operand count and that --ttl/--nx/--xx fit the command. */
static int sg_cli_check(const struct sg_cli *cli, const struct sg_cli_command *cmd)
{
    int n = cli->argc - 1;
    int ttl_ok = cmd->run == sg_cli_set || cmd->run == sg_cli_mset || cmd->run == sg_cli_setlease;

    if (n < cmd->min_args || (cmd->max_args >= 0 && n > cmd->max_args))
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "wrong number of arguments, usage: %s", cmd->usage);
    if (cli->has_ttl && !ttl_ok)
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "--ttl does not apply to '%s'", cmd->name);
    if (cli->cond != SG_COND_NONE && cmd->run != sg_cli_set)
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "--nx/--xx only apply to 'set'");
    return 0;
}

int main(int argc, char **argv)
{
    struct sg_cli cli;
    const struct sg_cli_command *cmd = NULL;
    size_t i;
    int rc;

    memset(&cli, 0, sizeof(cli));
    signal(SIGPIPE, SIG_IGN);
    cli.opt.client_name = "slotgate-cli";
    rc = sg_cli_parse(&cli, argc, argv);
    if (rc != 0) {
        free(cli.argv);
        return rc > 0 ? 0 : SG_CLI_EXIT_USAGE;
    }
    if (cli.argc == 0) {
        free(cli.argv);
        return sg_cli_fail(SG_CLI_EXIT_USAGE, "no command given (try --help)");
    }
    for (i = 0; i < sizeof(sg_cli_commands) / sizeof(sg_cli_commands[0]); i++)
        if (strcasecmp(cli.argv[0], sg_cli_commands[i].name) == 0)
            cmd = &sg_cli_commands[i];
    if (cmd == NULL) {
        rc = sg_cli_fail(SG_CLI_EXIT_USAGE, "unknown command '%s' (try --help)", cli.argv[0]);
        free(cli.argv);
        return rc;
    }
    rc = sg_cli_check(&cli, cmd);
    if (rc == 0 && (cli.client = sg_client_connect(&cli.opt))->err)
        rc = sg_cli_fail(SG_CLI_EXIT_ERROR, "%s", cli.client->errstr);
    if (rc == 0)
        rc = cmd->run(&cli);
    int out_err = fflush(stdout) != 0 ? errno : ferror(stdout) ? EIO : 0;
    if (out_err == EPIPE)
        rc = 128 + SIGPIPE; /* the reader has gone: nothing to report */
    else if (out_err != 0 && rc == 0)
        rc = sg_cli_fail(SG_CLI_EXIT_ERROR, "write to stdout failed: %s", strerror(out_err));
    sg_client_free(cli.client);
    free(cli.argv);
    return rc;
}
