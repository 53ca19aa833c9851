// Command cancel shows three ways to stop a stream before its end, each of which tells the
// server to stop generating: stop reading because you have what you need and Close the
// stream (breaking out of the range loop closes it); cancel its context from elsewhere, for
// example on Ctrl-C or when the user leaves; and give up on an upstream that has gone quiet,
// closing the stream when no chunk arrived for a while, a limit that a deadline for the whole
// answer cannot express.
//
//	go run ./examples/cancel -addr 127.0.0.1:50051
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the modelruntime server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// slowChat asks the fake provider for words with a delay before each.
func slowChat(ctx context.Context, client *modelruntime.Client, words int, delay time.Duration) (*modelruntime.ChatStream, error) {
	return client.StreamLLM(ctx, &modelruntimev1.StreamLLMRequest{
		Provider:        "fake",
		Model:           "fake-chat",
		Credentials:     map[string]string{"api_key": "fake-key"},
		PromptMessages:  []*modelruntimev1.PromptMessage{modelruntime.UserMessage(strings.Repeat("word ", words))},
		ModelParameters: map[string]*modelruntimev1.ParameterValue{"chunk_delay_ms": modelruntime.Int(delay.Milliseconds())},
	})
}

func run(ctx context.Context, addr string, out io.Writer) error {
	client, err := modelruntime.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	// 1. Enough read: break out of the loop after three chunks; that closes the stream.
	stream, err := slowChat(ctx, client, 100, 50*time.Millisecond)
	if err != nil {
		return err
	}
	got := 0
	for _, err := range stream.Chunks() {
		if err != nil {
			return err
		}
		if got++; got == 3 {
			break
		}
	}
	fmt.Fprintf(out, "1. stopped reading after %d of 100 chunks\n", got)

	// 2. Cancelled from elsewhere: another goroutine cancels the call's context.
	callCtx, cancelCall := context.WithCancel(ctx)
	defer cancelCall()
	stream, err = slowChat(callCtx, client, 100, 50*time.Millisecond)
	if err != nil {
		return err
	}
	time.AfterFunc(300*time.Millisecond, cancelCall) // stands for Ctrl-C, a closed browser tab, ...
	got = 0
	for _, err := range stream.Chunks() {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(out, "2. cancelled after %d chunks: %v\n", got, err)
			break
		}
		if err != nil {
			return err
		}
		got++
	}

	// 3. Idle timeout: close the stream when no chunk arrives within 500 ms. This upstream
	// takes 2 s per chunk.
	stream, err = slowChat(ctx, client, 5, 2*time.Second)
	if err != nil {
		return err
	}
	idle := time.AfterFunc(500*time.Millisecond, stream.Close)
	defer idle.Stop()
	for {
		_, err := stream.Recv()
		var mrErr *modelruntime.Error
		if errors.As(err, &mrErr) && mrErr.Code == codes.Canceled && ctx.Err() == nil {
			fmt.Fprintf(out, "3. no chunk for 500ms, closed: %v\n", err)
			return nil
		}
		if err != nil {
			return err
		}
		idle.Reset(500 * time.Millisecond) // a chunk arrived: the upstream is alive
	}
}
