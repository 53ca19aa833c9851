package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelruntime/modelruntime/clients/go/internal/testserver"
)

var server testserver.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

func TestErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, server.Addr(t), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"  attempt 1: modelruntime: INVOKE_RATE_LIMIT (ResourceExhausted) [fake/fake-chat]: ",
		"  waiting 200ms before retrying\n",
		"  gave up: modelruntime: INVOKE_RATE_LIMIT",
		"  attempt 1: modelruntime: INVOKE_AUTHORIZATION (PermissionDenied) [fake/fake-chat]: ",
		"  getting new credentials\n  answer: hello from the retry loop\n",
		"  attempt 1: modelruntime: INVALID_PARAMETER (InvalidArgument) [fake/fake-chat]: ",
		"  dropping parameter \"temprature\"\n  answer: ",
		"== the upstream rejects the request: give up\n  gave up: modelruntime: INVOKE_BAD_REQUEST (InvalidArgument) [fake/fake-chat]: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "answer: hello from the retry loop"); n != 2 {
		t.Errorf("want 2 answers (after re-auth and after the fix), got %d:\n%s", n, got)
	}
	if strings.Contains(got, "expired-key") {
		t.Errorf("the refused key is echoed:\n%s", got)
	}
}
