// Command chat streams a chat answer from a modelruntime server and prints it as it arrives,
// then the finish reason and usage.
//
//	go run ./examples/chat "Tell me something"
//	go run ./examples/chat -addr 127.0.0.1:50051 -provider openai -model gpt-4o -api-key "$OPENAI_API_KEY" "Hi"
//
// The defaults use the server's built-in fake provider, which needs no account.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/modelruntime/modelruntime/clients/go/modelruntime"
	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

type options struct {
	addr, provider, model, apiKey, prompt string
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:50051", "the modelruntime server")
	flag.StringVar(&o.provider, "provider", "fake", "the provider")
	flag.StringVar(&o.model, "model", "fake-chat", "the model")
	flag.StringVar(&o.apiKey, "api-key", "fake-key", "sent as the api_key credential")
	flag.Parse()
	o.prompt = strings.Join(flag.Args(), " ")
	if o.prompt == "" {
		o.prompt = "Hello from Go, streamed one word at a time."
	}

	// Ctrl-C cancels the call, which tells the server to stop generating.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	// One client per server, shared by the whole program. Plaintext suits a local server or a
	// mesh whose sidecar does TLS; otherwise pass grpc.WithTransportCredentials(credentials.NewTLS(...)).
	client, err := modelruntime.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer client.Close()

	// The deadline covers the whole answer, not each chunk.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	stream, err := client.StreamLLM(ctx, &modelruntimev1.StreamLLMRequest{
		Provider:    o.provider,
		Model:       o.model,
		Credentials: map[string]string{"api_key": o.apiKey},
		PromptMessages: []*modelruntimev1.PromptMessage{
			modelruntime.SystemMessage("Answer in one short paragraph."),
			modelruntime.UserMessage(o.prompt),
		},
		ModelParameters: map[string]*modelruntimev1.ParameterValue{
			"temperature": modelruntime.Float(0.2),
			"max_tokens":  modelruntime.Int(400),
		},
	})
	if err != nil {
		return err
	}

	var answer modelruntime.Accumulator
	for chunk, err := range stream.Chunks() {
		if err != nil {
			return err // an *modelruntime.Error; see examples/errors for acting on it
		}
		fmt.Fprint(out, chunk.GetDelta().GetMessage().GetContent())
		answer.Add(chunk)
	}

	result := answer.Result()
	usage := result.GetUsage()
	fmt.Fprintf(out, "\n\nfinish reason %s, %d prompt + %d completion tokens, %s %s, first token after %.3fs\n",
		result.GetFinishReason(), usage.GetPromptTokens(), usage.GetCompletionTokens(),
		usage.GetTotalPrice(), usage.GetCurrency(), usage.GetTimeToFirstToken())
	return nil
}
