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

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	start := time.Now()
	if err := run(ctx, server.Addr(t), &out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^1\. stopped reading after 3 of 100 chunks
2\. cancelled after [1-9] chunks: modelruntime: Canceled: .*
3\. no chunk for 500ms, closed: modelruntime: Canceled: .*
$`)
	if !want.MatchString(out.String()) {
		t.Errorf("output:\n%s", out.String())
	}
	// Every stop took effect at once, not at the end of the answers (5 s, 10 s).
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Errorf("took %v", elapsed)
	}
}
