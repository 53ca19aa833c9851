// Package modelruntime is the Go client of modelruntime, a gRPC service
// (modelruntime.v1.ModelRuntimeService) that puts many AI model providers behind one protobuf
// contract.
//
// The contract's messages and the generated gRPC client are in the sub-package
// [github.com/modelruntime/modelruntime/clients/go/modelruntime/v1] (package modelruntimev1).
// This package is a thin layer over them:
//
//   - [Client] has every RPC of the contract with the generated signatures; its StreamLLM
//     returns a [ChatStream] that yields one chunk at a time (Recv, or range over Chunks).
//   - Every error is an [*Error] with the gRPC code and the decoded status details: the
//     [Reason], provider and model, RetryAfter and FieldViolations. Use [errors.As] to get it,
//     [errors.Is] with a Reason to test for one, and [IsRetryable] to decide on a retry.
//   - [Accumulator] joins streamed chunks (tool-call fragments included) into an LLMResult.
//   - [Float], [Int], [String], [Bool], [UserMessage] and [SystemMessage] shorten requests.
//
// A chat, streamed:
//
//	client, err := modelruntime.NewClient("127.0.0.1:50051",
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//
//	ctx, cancel := context.WithTimeout(ctx, time.Minute)
//	defer cancel()
//	stream, err := client.StreamLLM(ctx, &modelruntimev1.StreamLLMRequest{
//		Provider:       "fake",
//		Model:          "fake-chat",
//		Credentials:    map[string]string{"api_key": "fake-key"},
//		PromptMessages: []*modelruntimev1.PromptMessage{modelruntime.UserMessage("Hello!")},
//	})
//	if err != nil {
//		return err
//	}
//	for chunk, err := range stream.Chunks() {
//		if err != nil {
//			return err
//		}
//		fmt.Print(chunk.GetDelta().GetMessage().GetContent())
//	}
package modelruntime
