package modelruntime_test

// Error decoding on statuses built here, without a server: every kind of detail, and the
// statuses a newer server, a proxy or grpc itself may produce.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

var allReasons = []modelruntime.Reason{
	modelruntime.ReasonInvokeConnectionError,
	modelruntime.ReasonInvokeServerUnavailable,
	modelruntime.ReasonInvokeRateLimit,
	modelruntime.ReasonInvokeAuthorization,
	modelruntime.ReasonInvokeBadRequest,
	modelruntime.ReasonInvokeTimeout,
	modelruntime.ReasonCredentialsValidateFailed,
	modelruntime.ReasonProviderNotFound,
	modelruntime.ReasonModelNotFound,
	modelruntime.ReasonModelTypeNotSupported,
	modelruntime.ReasonInvalidParameter,
	modelruntime.ReasonInvalidCredentials,
	modelruntime.ReasonInvalidRequest,
	modelruntime.ReasonInternal,
	modelruntime.ReasonInvokeQuotaExceeded,
	modelruntime.ReasonUnauthenticated,
	modelruntime.ReasonPermissionDenied,
	modelruntime.ReasonLimitExceeded,
	modelruntime.ReasonOverloaded,
	modelruntime.ReasonUpstreamAddressForbidden,
	modelruntime.ReasonCredentialSetNotFound,
	modelruntime.ReasonShuttingDown,
}

func statusError(t *testing.T, code codes.Code, message string, details ...*errdetails.ErrorInfo) *status.Status {
	t.Helper()
	st := status.New(code, message)
	for _, d := range details {
		var err error
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestReasonsMatchTheContract(t *testing.T) {
	want := map[modelruntime.Reason]bool{}
	for number, name := range modelruntimev1.ErrorReason_name {
		if number != 0 {
			want[modelruntime.Reason(strings.TrimPrefix(name, "ERROR_REASON_"))] = true
		}
	}
	got := map[modelruntime.Reason]bool{}
	for _, r := range allReasons {
		got[r] = true
	}
	for r := range want {
		if !got[r] {
			t.Errorf("error_reason.proto has %s, the Go client has no Reason constant for it", r)
		}
	}
	for r := range got {
		if !want[r] {
			t.Errorf("Reason constant %s is not in error_reason.proto", r)
		}
	}
}

func TestFromErrorDecodesEveryDetail(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "model_parameters.temperature: must be at most 2").WithDetails(
		&errdetails.ErrorInfo{
			Reason:   "INVALID_PARAMETER",
			Domain:   "modelruntime.v1",
			Metadata: map[string]string{"provider": "openai", "model": "gpt-4o", "extra": "x"},
		},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "model_parameters.temperature", Description: "must be at most 2"},
			{Field: "model_parameters.top_p", Description: "must be at most 1"},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	original := st.Err()
	got := modelruntime.FromError(original)

	var mrErr *modelruntime.Error
	if !errors.As(got, &mrErr) {
		t.Fatalf("want *Error, got %T", got)
	}
	if mrErr.Code != codes.InvalidArgument || mrErr.Reason != modelruntime.ReasonInvalidParameter ||
		mrErr.Message != "model_parameters.temperature: must be at most 2" ||
		mrErr.Provider != "openai" || mrErr.Model != "gpt-4o" || mrErr.Metadata["extra"] != "x" ||
		mrErr.RetryAfter != 1500*time.Millisecond || len(mrErr.FieldViolations) != 2 {
		t.Errorf("decoded: %+v", mrErr)
	}
	want := "modelruntime: INVALID_PARAMETER (InvalidArgument) [openai/gpt-4o]: model_parameters.temperature: " +
		"must be at most 2 (model_parameters.top_p: must be at most 1) (retry after 1.5s)"
	if mrErr.Error() != want {
		t.Errorf("Error():\n got %s\nwant %s", mrErr.Error(), want)
	}
	if !errors.Is(got, modelruntime.ReasonInvalidParameter) || errors.Is(got, modelruntime.ReasonInvalidRequest) {
		t.Error("errors.Is with a Reason")
	}
	if s, ok := status.FromError(got); !ok || len(s.Details()) != 3 || s.Code() != codes.InvalidArgument {
		t.Errorf("status.FromError on the *Error: %v %v", s, ok)
	}
	if !errors.Is(got, original) {
		t.Error("the *Error should unwrap to the original error")
	}
	// Wrapped further, it is still found and not decoded twice.
	wrapped := fmt.Errorf("asking the model: %w", got)
	if modelruntime.FromError(wrapped) != wrapped || !errors.As(wrapped, &mrErr) {
		t.Error("FromError on a wrapped *Error")
	}
}

func TestFromErrorWithoutTheServiceDetails(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"no details", status.Error(codes.Unavailable, "connection refused"), codes.Unavailable},
		{"another domain", statusError(t, codes.ResourceExhausted, "quota",
			&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: "envoy"}).Err(), codes.ResourceExhausted},
		{"not a status", errors.New("boom"), codes.Unknown},
		{"context canceled", context.Canceled, codes.Canceled},
		{"context deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mrErr *modelruntime.Error
			if !errors.As(modelruntime.FromError(tt.err), &mrErr) {
				t.Fatal("want an *Error")
			}
			if mrErr.Code != tt.code || mrErr.Reason != "" || mrErr.Provider != "" || mrErr.RetryAfter != 0 {
				t.Errorf("got %+v", mrErr)
			}
			if !strings.HasPrefix(mrErr.Error(), "modelruntime: "+tt.code.String()+": ") {
				t.Errorf("Error(): %s", mrErr)
			}
		})
	}
}

func TestFromErrorKeepsAReasonItDoesNotKnow(t *testing.T) {
	err := modelruntime.FromError(statusError(t, codes.Unavailable, "warming up",
		&errdetails.ErrorInfo{Reason: "MODEL_WARMING_UP", Domain: "modelruntime.v1"}).Err())
	var mrErr *modelruntime.Error
	if !errors.As(err, &mrErr) || mrErr.Reason != "MODEL_WARMING_UP" || mrErr.Code != codes.Unavailable {
		t.Fatalf("got %v", err)
	}
	// The contract says: act on the code alone.
	if !mrErr.Retryable() {
		t.Error("an unknown reason with code Unavailable is retryable")
	}
}

func TestFromErrorPassesNilAndEOF(t *testing.T) {
	if modelruntime.FromError(nil) != nil {
		t.Error("nil")
	}
	if modelruntime.FromError(io.EOF) != io.EOF {
		t.Error("io.EOF")
	}
	if modelruntime.IsRetryable(nil) || modelruntime.IsRetryable(io.EOF) {
		t.Error("IsRetryable of nil or io.EOF")
	}
}

func TestRetryable(t *testing.T) {
	retryable := map[modelruntime.Reason]bool{
		modelruntime.ReasonInvokeConnectionError:   true,
		modelruntime.ReasonInvokeServerUnavailable: true,
		modelruntime.ReasonInvokeRateLimit:         true,
		modelruntime.ReasonOverloaded:              true,
		modelruntime.ReasonShuttingDown:            true,
	}
	for _, r := range allReasons {
		e := &modelruntime.Error{Code: codes.Unavailable, Reason: r}
		if e.Retryable() != retryable[r] {
			t.Errorf("%s: Retryable() = %v", r, e.Retryable())
		}
	}
	for code, want := range map[codes.Code]bool{
		codes.Unavailable:       true,
		codes.ResourceExhausted: false, // grpc's own "message too large"
		codes.DeadlineExceeded:  false,
		codes.Internal:          false,
		codes.Canceled:          false,
	} {
		if got := modelruntime.IsRetryable(status.Error(code, "x")); got != want {
			t.Errorf("%v without details: IsRetryable = %v", code, got)
		}
	}
}

func TestContextErrorsMatch(t *testing.T) {
	canceled := modelruntime.FromError(status.Error(codes.Canceled, "context canceled"))
	deadline := modelruntime.FromError(status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	timeout := modelruntime.FromError(statusError(t, codes.DeadlineExceeded, "upstream too slow",
		&errdetails.ErrorInfo{Reason: "INVOKE_TIMEOUT", Domain: "modelruntime.v1"}).Err())
	if !errors.Is(canceled, context.Canceled) || errors.Is(canceled, context.DeadlineExceeded) {
		t.Error("canceled")
	}
	if !errors.Is(deadline, context.DeadlineExceeded) || errors.Is(deadline, context.Canceled) {
		t.Error("deadline")
	}
	if !errors.Is(timeout, context.DeadlineExceeded) || !errors.Is(timeout, modelruntime.ReasonInvokeTimeout) {
		t.Error("INVOKE_TIMEOUT")
	}
}

// A spent quota, from the real server's fake provider: a ResourceExhausted like a rate limit,
// but with its own reason, no RetryAfter, and not retryable.
func TestQuotaExceededFromTheServer(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("one two three", map[string]*modelruntimev1.ParameterValue{
		"fail_with":         modelruntime.String("quota"),
		"fail_after_chunks": modelruntime.Int(1),
		"retry_after":       modelruntime.Float(2.5),
	}))
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	var streamErr error
	for _, err := range stream.Chunks() {
		if err != nil {
			streamErr = err
			break
		}
		chunks++
	}
	if chunks != 1 {
		t.Errorf("want 1 chunk before the failure, got %d", chunks)
	}
	mrErr := asError(t, streamErr)
	if mrErr.Code != codes.ResourceExhausted || mrErr.Reason != modelruntime.ReasonInvokeQuotaExceeded {
		t.Errorf("want ResourceExhausted INVOKE_QUOTA_EXCEEDED, got %v %q", mrErr.Code, mrErr.Reason)
	}
	if mrErr.RetryAfter != 0 {
		t.Errorf("a spent quota carries no RetryAfter, got %v", mrErr.RetryAfter)
	}
	if modelruntime.IsRetryable(streamErr) || errors.Is(streamErr, modelruntime.ReasonInvokeRateLimit) {
		t.Error("a spent quota is not retryable and is not INVOKE_RATE_LIMIT")
	}
	if mrErr.Provider != "fake" || mrErr.Model != "fake-chat" {
		t.Errorf("provider/model: %q/%q", mrErr.Provider, mrErr.Model)
	}
}
