package modelruntime

import (
	"context"
	"io"

	"google.golang.org/grpc"

	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

// MaxMessageSize is the largest message a Client made by [NewClient] accepts by default: the
// server's own limit (32 MiB) rather than grpc-go's 4 MiB, so large embeddings and audio fit.
const MaxMessageSize = 32 << 20

// Client calls the modelruntime service.
//
// It embeds the generated client, so every RPC of the contract is a method with the generated
// signature (ListProviders, InvokeLLM, InvokeTextEmbedding, InvokeTTS, ...). The only
// differences: every error is an [*Error], and StreamLLM returns a [*ChatStream] that yields
// one chunk at a time. The generated client is also the embedded field
// ModelRuntimeServiceClient; its StreamLLM gives the raw messages.
//
// A Client is safe for concurrent use; make one per server and share it.
type Client struct {
	modelruntimev1.ModelRuntimeServiceClient

	conn *grpc.ClientConn // set when the Client owns its connection
}

// NewClient makes a Client with a connection of its own to target (for example
// "127.0.0.1:50051" or "dns:///modelruntime.internal:50051"); see grpc.NewClient. The options
// must choose transport credentials, for example
//
//	grpc.WithTransportCredentials(insecure.NewCredentials())
//
// inside a mesh whose sidecar does TLS. Messages up to [MaxMessageSize] are accepted unless the
// options say otherwise. Like grpc.NewClient it does not connect yet: a server that is down
// shows up as an *Error with code Unavailable on the first call. Close the Client when done.
func NewClient(target string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
	}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	c := NewClientFromConn(conn)
	c.conn = conn
	return c, nil
}

// NewClientFromConn makes a Client that calls over an existing connection, for example one
// your service already has with its interceptors and credentials. Closing the Client leaves
// the connection open.
func NewClientFromConn(cc grpc.ClientConnInterface) *Client {
	return &Client{ModelRuntimeServiceClient: modelruntimev1.NewModelRuntimeServiceClient(errorConn{cc})}
}

// Close closes the connection NewClient opened; it does nothing for NewClientFromConn.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// StreamLLM runs an LLM and streams its answer. Read it with [ChatStream.Recv] or
// [ChatStream.Chunks]. Errors about the request itself (an unknown model, a bad parameter)
// arrive from the first Recv, as every error after the stream started does.
//
// The call lasts as long as ctx allows: give ctx a deadline, and Close the stream if you stop
// reading before its end.
func (c *Client) StreamLLM(ctx context.Context, req *modelruntimev1.StreamLLMRequest, opts ...grpc.CallOption) (*ChatStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.ModelRuntimeServiceClient.StreamLLM(ctx, req, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &ChatStream{stream: stream, cancel: cancel}, nil
}

// errorConn makes every error of the calls over it an *Error.
type errorConn struct{ cc grpc.ClientConnInterface }

func (c errorConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return FromError(c.cc.Invoke(ctx, method, args, reply, opts...))
}

func (c errorConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	stream, err := c.cc.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return errorStream{stream}, nil
}

type errorStream struct{ grpc.ClientStream }

func (s errorStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == io.EOF {
		return err
	}
	return FromError(err)
}
