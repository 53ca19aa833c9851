package modelruntime_test

// These tests call the real modelruntime server (started once, on 127.0.0.1 and a free port)
// through the client, using the server's built-in fake provider.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/modelruntime/modelruntime/clients/go/internal/testserver"
	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

var server testserver.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

// testTimeout bounds every call of a test: nothing here should take more than a few seconds.
const testTimeout = 20 * time.Second

func newClient(t *testing.T) (*modelruntime.Client, context.Context) {
	t.Helper()
	client, err := modelruntime.NewClient(server.Addr(t), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return client, ctx
}

func chatRequest(prompt string, params map[string]*modelruntimev1.ParameterValue) *modelruntimev1.StreamLLMRequest {
	return &modelruntimev1.StreamLLMRequest{
		Provider:        "fake",
		Model:           "fake-chat",
		Credentials:     map[string]string{"api_key": "fake-key"},
		PromptMessages:  []*modelruntimev1.PromptMessage{modelruntime.UserMessage(prompt)},
		ModelParameters: params,
	}
}

// asError fails the test unless err is an *modelruntime.Error.
func asError(t *testing.T, err error) *modelruntime.Error {
	t.Helper()
	var mrErr *modelruntime.Error
	if !errors.As(err, &mrErr) {
		t.Fatalf("want a *modelruntime.Error, got %T: %v", err, err)
	}
	return mrErr
}

func TestStreamPlainTextOneChunkPerWord(t *testing.T) {
	client, ctx := newClient(t)
	reply := "the quick brown fox jumps over the lazy dog"
	stream, err := client.StreamLLM(ctx, chatRequest("hi", map[string]*modelruntimev1.ParameterValue{
		"reply": modelruntime.String(reply),
	}))
	if err != nil {
		t.Fatal(err)
	}
	var chunks []*modelruntimev1.LLMResultChunk
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, chunk)
	}
	// After the end, Recv keeps saying so.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv after the end: want io.EOF, got %v", err)
	}

	words := strings.Fields(reply)
	var content []string
	for _, chunk := range chunks {
		if c := chunk.GetDelta().GetMessage().GetContent(); c != "" {
			content = append(content, c)
		}
	}
	if len(content) != len(words) {
		t.Fatalf("want one content chunk per word (%d), got %d: %q", len(words), len(content), content)
	}
	for i, word := range words {
		if strings.TrimSpace(content[i]) != word {
			t.Errorf("chunk %d: want %q, got %q", i, word, content[i])
		}
	}
	for i, chunk := range chunks {
		if got := chunk.GetDelta().GetIndex(); got != int32(i) {
			t.Errorf("chunk %d has index %d", i, got)
		}
	}
	last := chunks[len(chunks)-1].GetDelta()
	if last.GetFinishReason() != "stop" {
		t.Errorf("finish reason: want stop, got %q", last.GetFinishReason())
	}
	if last.GetUsage().GetCompletionTokens() != int64(len(words)) || last.GetUsage().GetTotalTokens() == 0 {
		t.Errorf("usage: %v", last.GetUsage())
	}
}

func TestStreamArrivesChunkByChunk(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("one two three four five", map[string]*modelruntimev1.ParameterValue{
		"chunk_delay_ms": modelruntime.Int(100),
	}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var arrivals []time.Duration
	for _, err := range stream.Chunks() {
		if err != nil {
			t.Fatal(err)
		}
		arrivals = append(arrivals, time.Since(start))
	}
	// Five words 100 ms apart: the first must not wait for the last.
	if spread := arrivals[len(arrivals)-1] - arrivals[0]; spread < 250*time.Millisecond {
		t.Fatalf("chunks arrived together, not as produced: %v", arrivals)
	}
}

func TestStreamToolCalls(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("weather?", map[string]*modelruntimev1.ParameterValue{
		"reply":      modelruntime.String(""),
		"tool_calls": modelruntime.String(`[{"name":"get_weather","arguments":{"city":"Paris"}},{"name":"get_time","arguments":{"zone":"CET"}}]`),
	}))
	if err != nil {
		t.Fatal(err)
	}
	var answer modelruntime.Accumulator
	fragments := 0
	for chunk, err := range stream.Chunks() {
		if err != nil {
			t.Fatal(err)
		}
		fragments += len(chunk.GetDelta().GetMessage().GetToolCalls())
		answer.Add(chunk)
	}
	if fragments <= 2 {
		t.Fatalf("want the tool calls in several fragments, got %d", fragments)
	}
	result := answer.Result()
	if result.GetFinishReason() != "tool_calls" {
		t.Errorf("finish reason: want tool_calls, got %q", result.GetFinishReason())
	}
	if result.GetUsage().GetCompletionTokens() == 0 || result.GetUsage().GetCurrency() == "" {
		t.Errorf("usage: %v", result.GetUsage())
	}
	calls := result.GetMessage().GetToolCalls()
	if len(calls) != 2 {
		t.Fatalf("want 2 tool calls, got %v", calls)
	}
	want := []struct {
		name string
		args map[string]string
	}{{"get_weather", map[string]string{"city": "Paris"}}, {"get_time", map[string]string{"zone": "CET"}}}
	for i, call := range calls {
		if call.GetId() == "" || call.GetType() != "function" || call.GetFunction().GetName() != want[i].name {
			t.Errorf("call %d: %v", i, call)
		}
		var args map[string]string
		if err := json.Unmarshal([]byte(call.GetFunction().GetArguments()), &args); err != nil {
			t.Fatalf("call %d: arguments %q: %v", i, call.GetFunction().GetArguments(), err)
		}
		if !maps.Equal(args, want[i].args) {
			t.Errorf("call %d: want arguments %v, got %v", i, want[i].args, args)
		}
	}
	if result.GetMessage().GetRole() != modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_ASSISTANT {
		t.Errorf("role: %v", result.GetMessage().GetRole())
	}
}

func TestEmbedding(t *testing.T) {
	client, ctx := newClient(t)
	resp, err := client.InvokeTextEmbedding(ctx, &modelruntimev1.InvokeTextEmbeddingRequest{
		Provider:    "fake",
		Model:       "fake-embedding",
		Credentials: map[string]string{"api_key": "fake-key"},
		Texts:       []string{"hello", "world"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEmbeddings()) != 2 {
		t.Fatalf("want 2 embeddings, got %d", len(resp.GetEmbeddings()))
	}
	for i, embedding := range resp.GetEmbeddings() {
		if n := len(embedding.GetValues()); n != 16 {
			t.Errorf("embedding %d has %d dimensions, want 16", i, n)
		}
	}
	if resp.GetUsage().GetTokens() == 0 {
		t.Errorf("usage: %v", resp.GetUsage())
	}
}

func TestUnaryCalls(t *testing.T) {
	client, ctx := newClient(t)
	providers, err := client.ListProviders(ctx, &modelruntimev1.ListProvidersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range providers.GetProviders() {
		found = found || p.GetProvider() == "fake"
	}
	if !found {
		t.Fatalf("fake provider not listed: %v", providers)
	}
	resp, err := client.InvokeLLM(ctx, &modelruntimev1.InvokeLLMRequest{
		Provider:        "fake",
		Model:           "fake-chat",
		Credentials:     map[string]string{"api_key": "fake-key"},
		PromptMessages:  []*modelruntimev1.PromptMessage{modelruntime.UserMessage("hello there")},
		ModelParameters: map[string]*modelruntimev1.ParameterValue{"temperature": modelruntime.Float(0.2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetResult().GetMessage().GetContent(); got != "hello there" {
		t.Errorf("InvokeLLM content: %q", got)
	}
}

func TestRateLimitMidStream(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("one two three four", map[string]*modelruntimev1.ParameterValue{
		"fail_with":         modelruntime.String("rate_limit"),
		"fail_after_chunks": modelruntime.Int(2),
		"retry_after":       modelruntime.Float(2.5),
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var streamErr error
	for chunk, err := range stream.Chunks() {
		if err != nil {
			streamErr = err
			break
		}
		got = append(got, chunk.GetDelta().GetMessage().GetContent())
	}
	if len(got) != 2 {
		t.Fatalf("want 2 chunks before the failure, got %q", got)
	}
	mrErr := asError(t, streamErr)
	if mrErr.Code != codes.ResourceExhausted || mrErr.Reason != modelruntime.ReasonInvokeRateLimit {
		t.Errorf("want ResourceExhausted INVOKE_RATE_LIMIT, got %v %q", mrErr.Code, mrErr.Reason)
	}
	if mrErr.RetryAfter != 2500*time.Millisecond {
		t.Errorf("RetryAfter: want 2.5s, got %v", mrErr.RetryAfter)
	}
	if mrErr.Provider != "fake" || mrErr.Model != "fake-chat" {
		t.Errorf("provider/model: %q/%q", mrErr.Provider, mrErr.Model)
	}
	if !errors.Is(streamErr, modelruntime.ReasonInvokeRateLimit) || errors.Is(streamErr, modelruntime.ReasonInvokeTimeout) {
		t.Error("errors.Is by reason")
	}
	if !modelruntime.IsRetryable(streamErr) {
		t.Error("a rate limit is retryable")
	}
	if status.Code(streamErr) != codes.ResourceExhausted {
		t.Errorf("status.Code: %v", status.Code(streamErr))
	}
	if !strings.Contains(mrErr.Error(), "INVOKE_RATE_LIMIT (ResourceExhausted) [fake/fake-chat]") ||
		!strings.Contains(mrErr.Error(), "(retry after 2.5s)") {
		t.Errorf("message: %s", mrErr)
	}
}

func TestErrorBeforeFirstChunk(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("hi", map[string]*modelruntimev1.ParameterValue{
		"fail_with": modelruntime.String("authorization"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	mrErr := asError(t, err)
	if mrErr.Code != codes.PermissionDenied || mrErr.Reason != modelruntime.ReasonInvokeAuthorization || mrErr.Retryable() {
		t.Errorf("got %v", mrErr)
	}
	// The error stays.
	if _, again := stream.Recv(); again != err {
		t.Errorf("Recv after the error: %v", again)
	}
}

func TestInvalidParameter(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest("hi", map[string]*modelruntimev1.ParameterValue{
		"temprature": modelruntime.Float(0.5),
	}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	mrErr := asError(t, err)
	if mrErr.Code != codes.InvalidArgument || mrErr.Reason != modelruntime.ReasonInvalidParameter {
		t.Errorf("want InvalidArgument INVALID_PARAMETER, got %v", mrErr)
	}
	if len(mrErr.FieldViolations) != 1 || mrErr.FieldViolations[0].Field != "model_parameters.temprature" ||
		mrErr.FieldViolations[0].Description == "" {
		t.Errorf("field violations: %+v", mrErr.FieldViolations)
	}
	if mrErr.Retryable() {
		t.Error("an invalid parameter is not retryable")
	}

	// Unary calls decode the same way.
	_, err = client.InvokeTextEmbedding(ctx, &modelruntimev1.InvokeTextEmbeddingRequest{
		Provider: "nope", Model: "fake-embedding", Texts: []string{"x"},
	})
	if mrErr := asError(t, err); mrErr.Code != codes.NotFound || mrErr.Reason != modelruntime.ReasonProviderNotFound {
		t.Errorf("unknown provider: %v", mrErr)
	}
}

func TestDeadline(t *testing.T) {
	client, _ := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	stream, err := client.StreamLLM(ctx, chatRequest(strings.Repeat("word ", 20), map[string]*modelruntimev1.ParameterValue{
		"chunk_delay_ms": modelruntime.Int(100),
	}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	received := 0
	var streamErr error
	for _, err := range stream.Chunks() {
		if err != nil {
			streamErr = err
			break
		}
		received++
	}
	mrErr := asError(t, streamErr)
	// The server answers INVOKE_TIMEOUT when it notices first; grpc-go when the client does.
	if mrErr.Code != codes.DeadlineExceeded || (mrErr.Reason != "" && mrErr.Reason != modelruntime.ReasonInvokeTimeout) {
		t.Errorf("want DeadlineExceeded, got %v", mrErr)
	}
	if !errors.Is(streamErr, context.DeadlineExceeded) {
		t.Error("errors.Is(err, context.DeadlineExceeded)")
	}
	if received >= 20 {
		t.Errorf("the whole answer arrived despite the deadline (%d chunks)", received)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("the deadline ended the stream after %v", elapsed)
	}
}

func TestCancel(t *testing.T) {
	client, parent := newClient(t)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stream, err := client.StreamLLM(ctx, chatRequest(strings.Repeat("word ", 50), map[string]*modelruntimev1.ParameterValue{
		"chunk_delay_ms": modelruntime.Int(100),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	var streamErr error
	for {
		if _, streamErr = stream.Recv(); streamErr != nil {
			break
		}
	}
	mrErr := asError(t, streamErr)
	if mrErr.Code != codes.Canceled || !errors.Is(streamErr, context.Canceled) || mrErr.Retryable() {
		t.Errorf("want Canceled, got %v", mrErr)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("cancel took %v to end the stream", elapsed)
	}

	// Close from another goroutine ends a Recv that is waiting.
	stream, err = client.StreamLLM(parent, chatRequest("slow", map[string]*modelruntimev1.ParameterValue{
		"chunk_delay_ms": modelruntime.Int(5000),
	}))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, stream.Close)
	start = time.Now()
	_, err = stream.Recv()
	if mrErr := asError(t, err); mrErr.Code != codes.Canceled {
		t.Errorf("Recv after Close: %v", mrErr)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Close took %v to end Recv", elapsed)
	}
	// The connection is still good for other calls.
	if _, err := client.ListProviders(parent, &modelruntimev1.ListProvidersRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestBreakingOutOfChunksClosesTheStream(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.StreamLLM(ctx, chatRequest(strings.Repeat("word ", 50), map[string]*modelruntimev1.ParameterValue{
		"chunk_delay_ms": modelruntime.Int(50),
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range stream.Chunks() {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("want Canceled after break, got %v", err)
	}
}

func TestTTSStream(t *testing.T) {
	client, ctx := newClient(t)
	stream, err := client.InvokeTTS(ctx, &modelruntimev1.InvokeTTSRequest{
		Provider:    "fake",
		Model:       "fake-tts",
		Credentials: map[string]string{"api_key": "fake-key"},
		ContentText: "hello audio",
	})
	if err != nil {
		t.Fatal(err)
	}
	var audio []byte
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		audio = append(audio, resp.GetAudio()...)
	}
	if !strings.HasPrefix(string(audio), "RIFF") {
		t.Errorf("want a WAV file, got %d bytes starting %q", len(audio), audio[:min(len(audio), 8)])
	}
}

func TestServerDown(t *testing.T) {
	// A port nothing listens on: grpc reports Unavailable without details.
	client, err := modelruntime.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err = client.ListProviders(ctx, &modelruntimev1.ListProvidersRequest{})
	mrErr := asError(t, err)
	if mrErr.Code != codes.Unavailable || mrErr.Reason != "" || !mrErr.Retryable() {
		t.Errorf("want a retryable Unavailable without reason, got %v", mrErr)
	}
}
