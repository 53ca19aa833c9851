// Command errors shows how a program acts on each reason a modelruntime call can fail for:
// wait and retry when told to (RetryInfo), get new credentials when the upstream refuses
// them, fix the request when a field of it is at fault, and give up on the rest.
//
//	go run ./examples/errors -addr 127.0.0.1:50051
//
// It asks the server's fake provider to fail in each of these ways, so it needs no account.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the modelruntime server")
	flag.Parse()
	if err := run(context.Background(), *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

const maxAttempts = 3

// keyring stands for wherever the program gets its upstream credentials from (a secret store,
// an OAuth refresh); refresh is called when the upstream refuses the current ones.
type keyring struct{ current, next string }

func (k *keyring) credentials() map[string]string { return map[string]string{"api_key": k.current} }
func (k *keyring) refresh()                       { k.current = k.next }

// chat streams one answer and acts on each failure as its reason asks. The answer is returned
// whole: when a stream fails halfway, its partial text is dropped and a retry starts over.
func chat(ctx context.Context, client *modelruntime.Client, keys *keyring, params map[string]*modelruntimev1.ParameterValue, out io.Writer) (string, error) {
	backoff := 250 * time.Millisecond
	reauthenticated := false
	for attempt := 1; ; attempt++ {
		answer, err := streamOnce(ctx, client, &modelruntimev1.StreamLLMRequest{
			Provider:        "fake",
			Model:           "fake-chat",
			Credentials:     keys.credentials(),
			PromptMessages:  []*modelruntimev1.PromptMessage{modelruntime.UserMessage("hello from the retry loop")},
			ModelParameters: params,
		})
		if err == nil {
			return answer, nil
		}
		var mrErr *modelruntime.Error
		if !errors.As(err, &mrErr) || attempt == maxAttempts {
			return "", err
		}
		switch {
		case mrErr.Retryable():
			// INVOKE_RATE_LIMIT, INVOKE_SERVER_UNAVAILABLE, INVOKE_CONNECTION_ERROR, or the
			// runtime itself unreachable: the same call may work later. Wait as long as the
			// upstream asked (RetryInfo), else back off.
			wait := mrErr.RetryAfter
			if wait == 0 {
				wait, backoff = backoff, 2*backoff
			}
			fmt.Fprintf(out, "  attempt %d: %v\n  waiting %s before retrying\n", attempt, err, wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return "", ctx.Err()
			}

		case mrErr.Reason == modelruntime.ReasonInvokeAuthorization && !reauthenticated:
			// The upstream refused the credentials: the same ones would fail again.
			fmt.Fprintf(out, "  attempt %d: %v\n  getting new credentials\n", attempt, err)
			keys.refresh()
			reauthenticated = true

		case mrErr.Reason == modelruntime.ReasonInvalidParameter && len(mrErr.FieldViolations) > 0:
			// A parameter broke the model's rules, and the violations name it. A real program
			// might clamp the value; this one drops the parameter.
			fmt.Fprintf(out, "  attempt %d: %v\n", attempt, err)
			for _, v := range mrErr.FieldViolations {
				name := strings.TrimPrefix(v.Field, "model_parameters.")
				delete(params, name)
				fmt.Fprintf(out, "  dropping parameter %q\n", name)
			}

		default:
			// Nothing to do but report it: INVOKE_BAD_REQUEST (the upstream refused the
			// request: shorten the prompt, change a value), INVALID_REQUEST and
			// INVALID_CREDENTIALS (a bug in the caller; FieldViolations says where),
			// PROVIDER_NOT_FOUND / MODEL_NOT_FOUND / MODEL_TYPE_NOT_SUPPORTED (configuration),
			// CREDENTIALS_VALIDATE_FAILED, INVOKE_TIMEOUT and DeadlineExceeded (allow more
			// time, or not), INTERNAL (report it), Canceled (we cancelled).
			return "", err
		}
	}
}

func streamOnce(ctx context.Context, client *modelruntime.Client, req *modelruntimev1.StreamLLMRequest) (string, error) {
	// A deadline per attempt, inside the caller's overall one.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := client.StreamLLM(ctx, req)
	if err != nil {
		return "", err
	}
	var answer strings.Builder
	for chunk, err := range stream.Chunks() {
		if err != nil {
			return "", err
		}
		answer.WriteString(chunk.GetDelta().GetMessage().GetContent())
	}
	return answer.String(), nil
}

func run(ctx context.Context, addr string, out io.Writer) error {
	client, err := modelruntime.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer client.Close()

	scenarios := []struct {
		title  string
		keys   keyring
		params map[string]*modelruntimev1.ParameterValue
	}{
		{
			// The fake provider fails every time it is asked to, so these retries give up
			// after maxAttempts; against a real upstream the wait is usually enough.
			title: "rate limited after two chunks: retry after the RetryInfo delay",
			keys:  keyring{current: "fake-key"},
			params: map[string]*modelruntimev1.ParameterValue{
				"fail_with":         modelruntime.String("rate_limit"),
				"fail_after_chunks": modelruntime.Int(2),
				"retry_after":       modelruntime.Float(0.2),
			},
		},
		{
			title: "credentials refused: re-authenticate, then retry",
			keys:  keyring{current: "expired-key", next: "fake-key"},
		},
		{
			title:  "a parameter the model does not have: fix the request, then retry",
			keys:   keyring{current: "fake-key"},
			params: map[string]*modelruntimev1.ParameterValue{"temprature": modelruntime.Float(0.3)},
		},
		{
			title:  "the upstream rejects the request: give up",
			keys:   keyring{current: "fake-key"},
			params: map[string]*modelruntimev1.ParameterValue{"fail_with": modelruntime.String("bad_request")},
		},
	}
	for _, s := range scenarios {
		fmt.Fprintf(out, "== %s\n", s.title)
		if s.params == nil {
			s.params = map[string]*modelruntimev1.ParameterValue{}
		}
		answer, err := chat(ctx, client, &s.keys, s.params, out)
		if err != nil {
			fmt.Fprintf(out, "  gave up: %v\n", err)
			continue
		}
		fmt.Fprintf(out, "  answer: %s\n", answer)
	}
	return nil
}
