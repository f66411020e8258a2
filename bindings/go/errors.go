package registrar

import "strings"

// Code is a registrar_status from the C library. The numbers are stable.
type Code int32

// The status codes of the C API (include/registrar.h), one per registrar_status value.
const (
	CodeOK              Code = 0  // REGISTRAR_OK
	CodeNullArgument    Code = 1  // REGISTRAR_ERR_NULL_ARGUMENT
	CodeInvalidUTF8     Code = 2  // REGISTRAR_ERR_INVALID_UTF8
	CodeInvalidConfig   Code = 3  // REGISTRAR_ERR_INVALID_CONFIG
	CodeInvalidArgument Code = 4  // REGISTRAR_ERR_INVALID_ARGUMENT
	CodeTransport       Code = 5  // REGISTRAR_ERR_TRANSPORT
	CodeTimeout         Code = 6  // REGISTRAR_ERR_TIMEOUT
	CodeUnauthorized    Code = 7  // REGISTRAR_ERR_UNAUTHORIZED
	CodeNotFound        Code = 8  // REGISTRAR_ERR_NOT_FOUND
	CodeRejected        Code = 9  // REGISTRAR_ERR_REJECTED
	CodeShutDown        Code = 10 // REGISTRAR_ERR_SHUT_DOWN
	CodeForked          Code = 11 // REGISTRAR_ERR_FORKED
	CodePanic           Code = 12 // REGISTRAR_ERR_PANIC
)

var codeNames = [...]string{
	"REGISTRAR_OK",
	"REGISTRAR_ERR_NULL_ARGUMENT",
	"REGISTRAR_ERR_INVALID_UTF8",
	"REGISTRAR_ERR_INVALID_CONFIG",
	"REGISTRAR_ERR_INVALID_ARGUMENT",
	"REGISTRAR_ERR_TRANSPORT",
	"REGISTRAR_ERR_TIMEOUT",
	"REGISTRAR_ERR_UNAUTHORIZED",
	"REGISTRAR_ERR_NOT_FOUND",
	"REGISTRAR_ERR_REJECTED",
	"REGISTRAR_ERR_SHUT_DOWN",
	"REGISTRAR_ERR_FORKED",
	"REGISTRAR_ERR_PANIC",
}

var codeDescriptions = [...]string{
	"success",
	"a required argument was missing",
	"a string was not valid UTF-8",
	"invalid configuration",
	"invalid argument",
	"registry unreachable",
	"timed out",
	"unauthorized: the registry refused the credentials",
	"not found",
	"the registry rejected the request",
	"the client has been stopped",
	"the client was created in another process (fork)",
	"internal error in registrar (caught panic)",
}

// String returns the C name of the code, e.g. "REGISTRAR_ERR_TIMEOUT".
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "REGISTRAR_UNKNOWN_STATUS"
}

func (c Code) description() string {
	if c >= 0 && int(c) < len(codeDescriptions) {
		return codeDescriptions[c]
	}
	return "unknown error"
}

// Error is every error registrar returns: the C status code and the library's message.
// Messages never contain credentials.
//
// Compare with errors.Is against the sentinels (ErrTimeout, ErrUnauthorized, ...), which
// match any *Error with the same Code, or use errors.As to read Code and Message.
type Error struct {
	Code    Code
	Message string
	// causes are further errors this one wraps (e.g. ctx.Err() and the background thread's
	// last error for WaitRegistered); reached by errors.Is / errors.As through Unwrap.
	causes []error
}

func newError(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.description()
	}
	if strings.HasPrefix(msg, "registrar: ") {
		return msg
	}
	return "registrar: " + msg
}

// Is reports whether target is the sentinel of e's code (a *Error with no message).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.causes == nil && t.Code == e.Code
}

// Unwrap returns the errors this one wraps, if any.
func (e *Error) Unwrap() []error { return e.causes }

// Sentinels, one per error code, for errors.Is.
var (
	ErrNullArgument    = &Error{Code: CodeNullArgument}
	ErrInvalidUTF8     = &Error{Code: CodeInvalidUTF8}
	ErrInvalidConfig   = &Error{Code: CodeInvalidConfig}
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrTransport       = &Error{Code: CodeTransport}
	ErrTimeout         = &Error{Code: CodeTimeout}
	ErrUnauthorized    = &Error{Code: CodeUnauthorized}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrRejected        = &Error{Code: CodeRejected}
	ErrShutDown        = &Error{Code: CodeShutDown}
	ErrForked          = &Error{Code: CodeForked}
	ErrPanic           = &Error{Code: CodePanic}
)

// Sentinel returns the sentinel error of a code (nil for CodeOK or an unknown code).
func (c Code) Sentinel() error {
	switch c {
	case CodeNullArgument:
		return ErrNullArgument
	case CodeInvalidUTF8:
		return ErrInvalidUTF8
	case CodeInvalidConfig:
		return ErrInvalidConfig
	case CodeInvalidArgument:
		return ErrInvalidArgument
	case CodeTransport:
		return ErrTransport
	case CodeTimeout:
		return ErrTimeout
	case CodeUnauthorized:
		return ErrUnauthorized
	case CodeNotFound:
		return ErrNotFound
	case CodeRejected:
		return ErrRejected
	case CodeShutDown:
		return ErrShutDown
	case CodeForked:
		return ErrForked
	case CodePanic:
		return ErrPanic
	}
	return nil
}
