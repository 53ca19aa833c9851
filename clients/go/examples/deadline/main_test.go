package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelruntime/modelruntime/clients/go/internal/testserver"
)

var server testserver.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

func TestDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, server.Addr(t), &out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^in time: quick answer\ndeadline passed after [0-9]+ chunks: modelruntime: .*DeadlineExceeded`)
	if !want.MatchString(out.String()) {
		t.Errorf("output:\n%s", out.String())
	}
}
