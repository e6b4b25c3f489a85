package slotgate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	pb "github.com/slotgate/slotgate/clients/go/slotgatepb"
)

// Code is a slotgate status code: the values of slotgate.v1.Code
// (PROTOCOL.md section 9), plus two client-side codes (1000 and up) that the
// server never sends.
type Code int32

// Codes of slotgate.v1.Code.
const (
	CodeOK              Code = 0
	CodeNotFound        Code = 1
	CodeNotApplied      Code = 2
	CodeLeaseGranted    Code = 3
	CodeLeaseWait       Code = 4
	CodeBadFrame        Code = 100
	CodeFrameTooLarge   Code = 101
	CodeHandshakeReq    Code = 102
	CodeUnsupportedVer  Code = 103
	CodeAuthFailed      Code = 104
	CodeTooManyConns    Code = 105
	CodeShuttingDown    Code = 106
	CodeOutputLimit     Code = 107
	CodeUnknownOp       Code = 200
	CodeInvalidArgument Code = 201
	CodeInvalidKey      Code = 202
	CodeKeyTooLarge     Code = 203
	CodeValueTooLarge   Code = 204
	CodeBatchTooLarge   Code = 205
	CodeUnknownKeyspace Code = 206
	CodeTTLOutOfRange   Code = 207
	CodeLeaseInvalid    Code = 208
	CodeVersionConflict Code = 209
	CodeTimeout         Code = 300
	CodeShardUnavail    Code = 301
	CodeClusterDown     Code = 302
	CodeBackendError    Code = 303
	CodeCorruptValue    Code = 304
	CodeInternal        Code = 399

	// CodeClientIO: the connection failed (dial, TLS, read, write, EOF)
	// with the request written and unanswered, so its outcome is unknown;
	// or the client could not connect at all. Never sent by the server.
	CodeClientIO Code = 1000
	// CodeClientClosed: the Client was closed. Never sent by the server.
	CodeClientClosed Code = 1001
	// CodeCanceled: the caller's context was canceled before an answer.
	CodeCanceled Code = 1002
)

// String is the proto enum name without the CODE_ prefix ("NOT_FOUND"),
// "CLIENT_IO"/"CLIENT_CLOSED" for client codes, or the number for a code this
// client does not know.
func (c Code) String() string {
	switch c {
	case CodeClientIO:
		return "CLIENT_IO"
	case CodeClientClosed:
		return "CLIENT_CLOSED"
	case CodeCanceled:
		return "CANCELED"
	}
	if n, ok := pb.Code_name[int32(c)]; ok {
		return strings.TrimPrefix(n, "CODE_")
	}
	return strconv.Itoa(int(c))
}

// ParseCode is the inverse of Code.String for known names.
func ParseCode(name string) (Code, bool) {
	switch name {
	case "CLIENT_IO":
		return CodeClientIO, true
	case "CLIENT_CLOSED":
		return CodeClientClosed, true
	case "CANCELED":
		return CodeCanceled, true
	}
	if v, ok := pb.Code_value["CODE_"+name]; ok {
		return Code(v), true
	}
	return 0, false
}

// Retriable reports whether a request that failed with this code may be
// tried again (PROTOCOL.md section 9). For writes that failed with
// TIMEOUT, SHARD_UNAVAILABLE or CLIENT_IO the outcome is unknown: retry only
// idempotent writes.
func (c Code) Retriable() bool {
	switch c {
	case CodeLeaseWait, CodeTooManyConns, CodeShuttingDown, CodeOutputLimit, CodeTimeout,
		CodeShardUnavail, CodeClusterDown, CodeInternal, CodeClientIO:
		return true
	}
	return false
}

// Error is every error the client returns for a request: a code the server
// answered, or one the client decided locally (Local: a limit check, a
// deadline, a broken connection). Use errors.As to get it, and errors.Is
// with the sentinels (ErrNotFound, ErrVersionConflict, ...) to test a code.
type Error struct {
	Code      Code
	Message   string // human readable; never parse it
	Retriable bool   // Code.Retriable()
	Local     bool   // decided by this client, not sent by the server
	// Version is the current stored version for VERSION_CONFLICT.
	Version uint64
	// RetryAfterMs is the server's hint for LEASE_WAIT.
	RetryAfterMs uint32
	// Count is keys removed so far when INVALIDATE fails.
	Count int64

	cause    error
	sentinel bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("slotgate: ")
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Is matches the sentinel of the same code: errors.Is(err, ErrTimeout).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Code == e.Code
}

// Unwrap returns the underlying cause (an I/O or TLS error), if any.
func (e *Error) Unwrap() error { return e.cause }

func sentinel(c Code) *Error {
	return &Error{Code: c, Retriable: c.Retriable(), sentinel: true}
}

// Sentinels for errors.Is. ErrNotFound is a miss (like redis.Nil).
var (
	ErrNotFound           = sentinel(CodeNotFound)
	ErrNotApplied         = sentinel(CodeNotApplied)
	ErrLeaseWait          = sentinel(CodeLeaseWait)
	ErrBadFrame           = sentinel(CodeBadFrame)
	ErrFrameTooLarge      = sentinel(CodeFrameTooLarge)
	ErrHandshakeRequired  = sentinel(CodeHandshakeReq)
	ErrUnsupportedVersion = sentinel(CodeUnsupportedVer)
	ErrAuthFailed         = sentinel(CodeAuthFailed)
	ErrTooManyConnections = sentinel(CodeTooManyConns)
	ErrShuttingDown       = sentinel(CodeShuttingDown)
	ErrOutputLimit        = sentinel(CodeOutputLimit)
	ErrUnknownOp          = sentinel(CodeUnknownOp)
	ErrInvalidArgument    = sentinel(CodeInvalidArgument)
	ErrInvalidKey         = sentinel(CodeInvalidKey)
	ErrKeyTooLarge        = sentinel(CodeKeyTooLarge)
	ErrValueTooLarge      = sentinel(CodeValueTooLarge)
	ErrBatchTooLarge      = sentinel(CodeBatchTooLarge)
	ErrUnknownKeyspace    = sentinel(CodeUnknownKeyspace)
	ErrTTLOutOfRange      = sentinel(CodeTTLOutOfRange)
	ErrLeaseInvalid       = sentinel(CodeLeaseInvalid)
	ErrVersionConflict    = sentinel(CodeVersionConflict)
	ErrTimeout            = sentinel(CodeTimeout)
	ErrShardUnavailable   = sentinel(CodeShardUnavail)
	ErrClusterDown        = sentinel(CodeClusterDown)
	ErrBackendError       = sentinel(CodeBackendError)
	ErrCorruptValue       = sentinel(CodeCorruptValue)
	ErrInternal           = sentinel(CodeInternal)
	ErrClientIO           = sentinel(CodeClientIO)
	ErrClosed             = sentinel(CodeClientClosed)
	ErrCanceled           = sentinel(CodeCanceled)
)

// CodeOf returns the code of err: CodeOK for nil, the code of a *Error in
// its chain, CodeTimeout for context.DeadlineExceeded, otherwise
// CodeClientIO.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeClientIO
}

func newError(c Code, msg string) *Error {
	return &Error{Code: c, Message: msg, Retriable: c.Retriable()}
}

func localError(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...), Retriable: c.Retriable(), Local: true}
}

func ioError(msg string, cause error) *Error {
	return &Error{Code: CodeClientIO, Message: msg, Retriable: true, Local: true, cause: cause}
}

// respError builds the error for a non-OK response code.
func respError(r *pb.Response) *Error {
	c := Code(r.GetCode())
	return &Error{Code: c, Message: r.GetMessage(), Retriable: c.Retriable(),
		Version: r.GetVersion(), RetryAfterMs: r.GetRetryAfterMs(), Count: r.GetCount()}
}
