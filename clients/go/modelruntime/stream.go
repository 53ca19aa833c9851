package modelruntime

import (
	"context"
	"io"
	"iter"

	"google.golang.org/grpc"

	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

// ChatStream is a streamed LLM answer, read one chunk at a time. Each chunk is one upstream
// delta; the last carries Delta.FinishReason and Delta.Usage.
//
// Recv is not safe to call from several goroutines at once; Close is, at any time.
type ChatStream struct {
	stream  grpc.ServerStreamingClient[modelruntimev1.StreamLLMResponse]
	cancel  context.CancelFunc
	pending []*modelruntimev1.LLMResultChunk
	err     error
}

// Recv returns the next chunk. At the end of the answer it returns io.EOF; when the call
// fails, before or after the first chunk, it returns an [*Error] (a failure never looks like
// a shorter answer). Once it has returned an error it returns the same error again.
func (s *ChatStream) Recv() (*modelruntimev1.LLMResultChunk, error) {
	for len(s.pending) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		resp, err := s.stream.Recv()
		if err != nil {
			s.err = err
			s.cancel()
			return nil, err
		}
		// The server may put several waiting chunks in one message; hand them out one by one.
		s.pending = resp.GetChunks()
	}
	chunk := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	return chunk, nil
}

// Chunks returns an iterator over the remaining chunks, for use with range:
//
//	for chunk, err := range stream.Chunks() {
//		if err != nil {
//			return err // an *Error; the end of the answer is not an error here
//		}
//		fmt.Print(chunk.GetDelta().GetMessage().GetContent())
//	}
//
// The iteration ends after the last chunk, or after yielding the one error. Breaking out of
// the loop early closes the stream.
func (s *ChatStream) Chunks() iter.Seq2[*modelruntimev1.LLMResultChunk, error] {
	return func(yield func(*modelruntimev1.LLMResultChunk, error) bool) {
		defer s.Close()
		for {
			chunk, err := s.Recv()
			if err == io.EOF {
				return
			}
			if !yield(chunk, err) || err != nil {
				return
			}
		}
	}
}

// Close cancels the call if it is still running, which tells the server to stop generating,
// and releases its resources. It is safe to call more than once, and from another goroutine
// than the one in Recv; Recv then returns an *Error with code Canceled (after any chunks it
// had already received).
func (s *ChatStream) Close() {
	s.cancel()
}
