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

func TestChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	o := options{addr: server.Addr(t), provider: "fake", model: "fake-chat", apiKey: "fake-key", prompt: "streamed from Go"}
	if err := run(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "streamed from Go\n\nfinish reason stop, ") {
		t.Errorf("output:\n%s", out.String())
	}
}
