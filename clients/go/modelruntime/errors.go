package modelruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the service reports.
const ErrorDomain = "modelruntime.v1"

// Reason says why a call failed: the google.rpc.ErrorInfo reason the service sends, which is
// the name of a value of the contract's ErrorReason enum without its ERROR_REASON_ prefix.
//
// A Reason is also an error, so it works as a sentinel with [errors.Is]:
//
//	if errors.Is(err, modelruntime.ReasonInvokeRateLimit) { ... }
//
// New reasons may be added to the contract. An [Error] keeps a reason this package does not
// know as it came; act on its Code then, as the contract asks.
type Reason string

// The reasons of the contract (error_reason.proto), with the gRPC code each comes with.
const (
	// The upstream could not be reached or the connection broke. Unavailable; retryable.
	ReasonInvokeConnectionError Reason = "INVOKE_CONNECTION_ERROR"
	// The upstream cannot serve now (5xx, overloaded). Unavailable, maybe RetryAfter; retryable.
	ReasonInvokeServerUnavailable Reason = "INVOKE_SERVER_UNAVAILABLE"
	// The upstream rate-limited the credentials. ResourceExhausted, maybe RetryAfter; retryable.
	ReasonInvokeRateLimit Reason = "INVOKE_RATE_LIMIT"
	// The credentials' quota, credit or spend limit at the upstream is used up.
	// ResourceExhausted, never RetryAfter; NOT retryable: only a bigger budget or other
	// credentials help.
	ReasonInvokeQuotaExceeded Reason = "INVOKE_QUOTA_EXCEEDED"
	// The upstream refused the credentials. PermissionDenied; get new credentials first.
	ReasonInvokeAuthorization Reason = "INVOKE_AUTHORIZATION"
	// The upstream rejected the request (context too long, ...). InvalidArgument; fix the request.
	ReasonInvokeBadRequest Reason = "INVOKE_BAD_REQUEST"
	// The upstream did not finish within the caller's deadline. DeadlineExceeded.
	ReasonInvokeTimeout Reason = "INVOKE_TIMEOUT"
	// The credentials were checked against the upstream and do not work. FailedPrecondition.
	ReasonCredentialsValidateFailed Reason = "CREDENTIALS_VALIDATE_FAILED"
	// No provider of that name is loaded. NotFound.
	ReasonProviderNotFound Reason = "PROVIDER_NOT_FOUND"
	// The provider has no such model of the requested type. NotFound.
	ReasonModelNotFound Reason = "MODEL_NOT_FOUND"
	// The provider does not offer the requested model type. NotFound.
	ReasonModelTypeNotSupported Reason = "MODEL_TYPE_NOT_SUPPORTED"
	// A model parameter broke the model's rules. InvalidArgument, with FieldViolations
	// naming each model_parameters.<name>.
	ReasonInvalidParameter Reason = "INVALID_PARAMETER"
	// The credentials do not fit the provider's credential form. InvalidArgument, with
	// FieldViolations naming each credentials.<variable>.
	ReasonInvalidCredentials Reason = "INVALID_CREDENTIALS"
	// The request is malformed (empty required field, unsupported content). InvalidArgument,
	// with FieldViolations naming the field.
	ReasonInvalidRequest Reason = "INVALID_REQUEST"
	// A bug in the runtime or a provider. Internal; please report it.
	ReasonInternal Reason = "INTERNAL"
	// The caller's own API key to the service (authorization: Bearer) is missing or unknown.
	// Unauthenticated.
	ReasonUnauthenticated Reason = "UNAUTHENTICATED"
	// The caller's API key may not use this provider, model or credential set. PermissionDenied.
	ReasonPermissionDenied Reason = "PERMISSION_DENIED"
	// The request is over a limit of the server's config. InvalidArgument, with FieldViolations
	// naming the field and Metadata["limit"] and Metadata["limit_value"] naming the limit.
	ReasonLimitExceeded Reason = "LIMIT_EXCEEDED"
	// The server is at its cap of concurrent calls and shed the call. ResourceExhausted with
	// RetryAfter; retryable (later, or on another replica).
	ReasonOverloaded Reason = "OVERLOADED"
	// An upstream URL the caller gave resolves to an address the server's outbound allow-list
	// forbids; nothing was sent. PermissionDenied.
	ReasonUpstreamAddressForbidden Reason = "UPSTREAM_ADDRESS_FORBIDDEN"
	// The request named a server-side credential set the server does not have (its name is
	// Metadata["credential_set"]). NotFound.
	ReasonCredentialSetNotFound Reason = "CREDENTIAL_SET_NOT_FOUND"
	// The server is draining before it stops. Unavailable; retryable on another replica.
	ReasonShuttingDown Reason = "SHUTTING_DOWN"
)

var knownReasons = map[Reason]bool{
	ReasonInvokeConnectionError: true, ReasonInvokeServerUnavailable: true,
	ReasonInvokeRateLimit: true, ReasonInvokeAuthorization: true, ReasonInvokeBadRequest: true,
	ReasonInvokeTimeout: true, ReasonCredentialsValidateFailed: true,
	ReasonProviderNotFound: true, ReasonModelNotFound: true, ReasonModelTypeNotSupported: true,
	ReasonInvalidParameter: true, ReasonInvalidCredentials: true, ReasonInvalidRequest: true,
	ReasonInternal: true, ReasonInvokeQuotaExceeded: true, ReasonUnauthenticated: true,
	ReasonPermissionDenied: true, ReasonLimitExceeded: true, ReasonOverloaded: true,
	ReasonUpstreamAddressForbidden: true, ReasonCredentialSetNotFound: true,
	ReasonShuttingDown: true,
}

// Error implements the error interface, so that a Reason can be the target of [errors.Is].
func (r Reason) Error() string { return string(r) }

// FieldViolation names one field of the request at fault and why, from the status's
// google.rpc.BadRequest detail.
type FieldViolation struct {
	Field       string // for example "model_parameters.temperature" or "credentials.api_key"
	Description string
}

// Error is a failed call to the service: its gRPC status with the details decoded.
//
// Every error returned by a [Client] method, and by the Recv of its streams, is an *Error
// (except io.EOF at the end of a stream). Get at it with [errors.As]:
//
//	var mrErr *modelruntime.Error
//	if errors.As(err, &mrErr) && mrErr.Reason == modelruntime.ReasonInvokeRateLimit {
//		time.Sleep(mrErr.RetryAfter)
//	}
//
// A status without the service's ErrorInfo (one made by grpc itself, a proxy, or a newer
// server) still becomes an *Error: Reason is then empty and Code tells what happened.
// *Error implements GRPCStatus, so status.FromError and status.Code work on it too.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the ErrorInfo reason of domain modelruntime.v1; empty when there is none.
	Reason Reason
	// Message is the status message.
	Message string
	// Provider and Model are the ones the failed call named, from the ErrorInfo metadata.
	Provider, Model string
	// Metadata is the whole ErrorInfo metadata (provider, model, and whatever a newer server adds).
	Metadata map[string]string
	// RetryAfter is how long the upstream asked to wait before retrying (RetryInfo); 0 when it
	// did not say.
	RetryAfter time.Duration
	// FieldViolations lists the request fields at fault (BadRequest); nil when none.
	FieldViolations []FieldViolation

	status *status.Status
	cause  error
}

// FromError turns an error of the generated client (or of anything else that returns gRPC
// statuses) into an *Error. It returns nil for nil and io.EOF unchanged, so it can wrap the
// Recv of a raw stream; an error that already is or wraps an *Error comes back as it is.
// An error that is not a gRPC status becomes an *Error with code Canceled or DeadlineExceeded
// for the context errors and Unknown for anything else.
func FromError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return newError(err)
}

func newError(err error) *Error {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st, cause: err}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if e.Reason == "" && d.GetDomain() == ErrorDomain && d.GetReason() != "" {
				e.Reason = Reason(d.GetReason())
				e.Metadata = d.GetMetadata()
				e.Provider = e.Metadata["provider"]
				e.Model = e.Metadata["model"]
			}
		case *errdetails.RetryInfo:
			if delay := d.GetRetryDelay(); delay != nil && delay.IsValid() {
				e.RetryAfter = delay.AsDuration()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations,
					FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return e
}

// Error formats the error as REASON (Code) [provider/model]: message, followed by the field
// violations the message does not name and the retry delay, if any.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("modelruntime: ")
	if e.Reason != "" {
		fmt.Fprintf(&b, "%s (%s)", string(e.Reason), e.Code)
	} else {
		b.WriteString(e.Code.String())
	}
	if target := strings.Trim(e.Provider+"/"+e.Model, "/"); target != "" {
		fmt.Fprintf(&b, " [%s]", target)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	// The server often spells the violations out in the message already; don't repeat them.
	var unmentioned []string
	for _, v := range e.FieldViolations {
		if !strings.Contains(e.Message, v.Field) {
			unmentioned = append(unmentioned, v.Field+": "+v.Description)
		}
	}
	if len(unmentioned) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(unmentioned, "; "))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// GRPCStatus returns the status the error was made from, details included.
func (e *Error) GRPCStatus() *status.Status {
	if e.status == nil {
		return status.New(e.Code, e.Message)
	}
	return e.status
}

// Unwrap returns the error the *Error was made from.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether the error matches target: a [Reason] equal to e.Reason,
// context.Canceled for code Canceled, or context.DeadlineExceeded for code DeadlineExceeded
// (the caller's deadline passed, whether the client or the server noticed first).
func (e *Error) Is(target error) bool {
	switch target {
	case context.Canceled:
		return e.Code == codes.Canceled
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	}
	r, ok := target.(Reason)
	return ok && r != "" && r == e.Reason
}

// Retryable reports whether the same call may succeed if sent again, unchanged, after
// RetryAfter (or a backoff of your choosing when that is 0): connection errors, an upstream
// that cannot serve now, rate limits (not a spent quota), an overloaded or draining server.
// Without a reason this package knows, only code Unavailable is retryable; ResourceExhausted
// without a reason is not (grpc reports a message over the size limit that way).
func (e *Error) Retryable() bool {
	switch e.Reason {
	case ReasonInvokeConnectionError, ReasonInvokeServerUnavailable, ReasonInvokeRateLimit,
		ReasonOverloaded, ReasonShuttingDown:
		return true
	}
	return !knownReasons[e.Reason] && e.Code == codes.Unavailable
}

// IsRetryable reports whether err is an [*Error] (or a gRPC status error, see [FromError])
// that is [Error.Retryable].
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(FromError(err), &e) && e.Retryable()
}
