// Command deadline shows calls with a deadline: a unary call that finishes in time, and a
// stream that does not, which ends with DeadlineExceeded after the chunks that made it.
//
//	go run ./examples/deadline -addr 127.0.0.1:50051
//
// The deadline travels with the call: the server (and the provider behind it) gives up when it
// passes, so no tokens are generated for an answer nobody waits for.
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

var fake = map[string]string{"api_key": "fake-key"}

func run(ctx context.Context, addr string, out io.Writer) error {
	client, err := modelruntime.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer client.Close()

	// A unary call: the whole answer within 5 seconds.
	unaryCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := client.InvokeLLM(unaryCtx, &modelruntimev1.InvokeLLMRequest{
		Provider:       "fake",
		Model:          "fake-chat",
		Credentials:    fake,
		PromptMessages: []*modelruntimev1.PromptMessage{modelruntime.UserMessage("quick answer")},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "in time: %s\n", resp.GetResult().GetMessage().GetContent())

	// A stream: 20 words, 100 ms apart, but only 500 ms to deliver them. The deadline covers
	// the whole stream, from the call to the last chunk.
	streamCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	stream, err := client.StreamLLM(streamCtx, &modelruntimev1.StreamLLMRequest{
		Provider:        "fake",
		Model:           "fake-chat",
		Credentials:     fake,
		PromptMessages:  []*modelruntimev1.PromptMessage{modelruntime.UserMessage(strings.Repeat("slow ", 20))},
		ModelParameters: map[string]*modelruntimev1.ParameterValue{"chunk_delay_ms": modelruntime.Int(100)},
	})
	if err != nil {
		return err
	}
	received := 0
	for _, err := range stream.Chunks() {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// Code DeadlineExceeded: reason INVOKE_TIMEOUT when the server noticed first,
			// none when grpc-go did. The answer is incomplete: don't use it as if it were whole.
			fmt.Fprintf(out, "deadline passed after %d chunks: %v\n", received, err)
			return nil
		case err != nil:
			return err
		}
		received++
	}
	return fmt.Errorf("the stream ended in time, after %d chunks", received)
}
