// Command loadgen drives streamed chats against one target and prints what it measured as one
// JSON object on stdout. The same program, with the same worker loop and the same bookkeeping,
// drives every leg of the benchmark, so that its own cost is the same whichever target it
// measures:
//
//   - -mode grpc calls StreamLLM through the repository's Go stubs (clients/go);
//   - -mode http posts OpenAI chat requests with stream=true and reads the SSE stream (the
//     direct leg and LiteLLM's proxy).
//
// N workers run requests back to back until -duration has passed (requests already started
// finish) or -requests have been started. Per request it records the time to the first content
// chunk, the total time and the number of content chunks; -expect-chunks turns a stream with any
// other count into an error, since a gateway must forward every delta. With -cancel each request
// is cancelled as soon as its first content chunk arrives, and the wall-clock time of the cancel
// is reported with the chunk's "#<n>" tag so that the runner can match it with the upstream's
// record of the connection closing.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	modelruntimev1 "github.com/modelruntime/modelruntime/clients/go/modelruntime/v1"
)

type config struct {
	mode         string
	target       string
	model        string
	provider     string
	credentials  map[string]string
	parameters   map[string]string
	apiKey       string
	prompt       string
	concurrency  int
	duration     time.Duration
	requests     int
	expectChunks int
	timeout      time.Duration
	ramp         time.Duration
	conns        int
	cancel       bool
	oneEach      bool
}

// outcome is what one request measured.
type outcome struct {
	ttft       time.Duration // zero when no content chunk arrived
	total      time.Duration
	chunks     int // content chunks (non-empty text)
	messages   int // gRPC messages or SSE data frames
	err        error
	cancelTag  string
	cancelUnix int64
}

// streamFunc runs one request; it calls onFirst with the first content chunk's text and, when
// onFirst returns true, cancels the request there.
type streamFunc func(ctx context.Context, onFirst func(text string) bool) outcome

func main() {
	cfg := parseFlags()
	var run streamFunc
	var closeFn func()
	switch cfg.mode {
	case "grpc":
		run, closeFn = grpcStreamer(cfg)
	case "http":
		run, closeFn = httpStreamer(cfg)
	default:
		fail("unknown -mode %q (grpc or http)", cfg.mode)
	}
	defer closeFn()
	report := drive(cfg, run)
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(report); err != nil {
		fail("%v", err)
	}
}

type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }
func (kv keyValues) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("want KEY=VALUE")
	}
	kv[key] = value
	return nil
}

func parseFlags() config {
	cfg := config{credentials: keyValues{}, parameters: keyValues{}}
	flag.StringVar(&cfg.mode, "mode", "grpc", "grpc (StreamLLM) or http (OpenAI chat completions over SSE)")
	flag.StringVar(&cfg.target, "target", "", "grpc: host:port; http: the base URL, e.g. http://127.0.0.1:8000/v1")
	flag.StringVar(&cfg.model, "model", "bench-chunks64", "the model to ask for")
	flag.StringVar(&cfg.provider, "provider", "openai_api_compatible", "grpc: the provider")
	flag.Var(keyValues(cfg.credentials), "credential", "grpc: a credential KEY=VALUE (repeatable)")
	flag.Var(keyValues(cfg.parameters), "param", "grpc: a model parameter NAME=VALUE (repeatable; integers, floats and true/false are typed)")
	flag.StringVar(&cfg.apiKey, "api-key", os.Getenv("LOADGEN_API_KEY"), "http: sent as a Bearer token (default $LOADGEN_API_KEY, which keeps it out of the process list)")
	flag.StringVar(&cfg.prompt, "prompt", "Say hello.", "the user message")
	flag.IntVar(&cfg.concurrency, "concurrency", 1, "concurrent workers")
	flag.DurationVar(&cfg.duration, "duration", 0, "start requests for this long (0: until -requests)")
	flag.IntVar(&cfg.requests, "requests", 0, "start at most this many requests (0: until -duration)")
	flag.IntVar(&cfg.expectChunks, "expect-chunks", 0, "content chunks every stream must have (0: any)")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "give up on one request after this long")
	flag.DurationVar(&cfg.ramp, "ramp", 0, "start the workers evenly over this time")
	flag.IntVar(&cfg.conns, "conns", 1, "grpc: connections the workers share round-robin")
	flag.BoolVar(&cfg.cancel, "cancel", false, "cancel each request at its first content chunk")
	flag.BoolVar(&cfg.oneEach, "one-each", false, "each worker makes exactly one request: N streams open together, none replaced when it ends early")
	flag.Parse()
	if cfg.target == "" {
		fail("-target is required")
	}
	if cfg.duration <= 0 && cfg.requests <= 0 && !cfg.oneEach {
		fail("give -duration, -requests or -one-each")
	}
	if cfg.concurrency < 1 || cfg.conns < 1 {
		fail("-concurrency and -conns must be at least 1")
	}
	return cfg
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}

func grpcStreamer(cfg config) (streamFunc, func()) {
	conns := make([]*grpc.ClientConn, cfg.conns)
	clients := make([]modelruntimev1.ModelRuntimeServiceClient, cfg.conns)
	for i := range conns {
		conn, err := grpc.NewClient(cfg.target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(32<<20)))
		if err != nil {
			fail("%v", err)
		}
		conns[i] = conn
		clients[i] = modelruntimev1.NewModelRuntimeServiceClient(conn)
	}
	request := &modelruntimev1.StreamLLMRequest{
		Provider:        cfg.provider,
		Model:           cfg.model,
		Credentials:     cfg.credentials,
		ModelParameters: parameterValues(cfg.parameters),
		PromptMessages: []*modelruntimev1.PromptMessage{{
			Role:    modelruntimev1.PromptMessageRole_PROMPT_MESSAGE_ROLE_USER,
			Content: cfg.prompt,
		}},
	}
	var next atomic.Uint64
	run := func(ctx context.Context, onFirst func(string) bool) outcome {
		client := clients[next.Add(1)%uint64(len(clients))]
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var o outcome
		start := time.Now()
		stream, err := client.StreamLLM(ctx, request)
		if err != nil {
			o.err = grpcError(err)
			o.total = time.Since(start)
			return o
		}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				o.err = grpcError(err)
				break
			}
			o.messages++
			for _, chunk := range resp.GetChunks() {
				text := chunk.GetDelta().GetMessage().GetContent()
				if text == "" {
					continue
				}
				o.chunks++
				if o.chunks == 1 {
					o.ttft = time.Since(start)
					if onFirst(text) {
						o.cancelUnix = time.Now().UnixNano()
						cancel()
						o.cancelTag = tagOf(text)
						o.total = time.Since(start)
						return o
					}
				}
			}
		}
		o.total = time.Since(start)
		return o
	}
	return run, func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}
}

func parameterValues(raw map[string]string) map[string]*modelruntimev1.ParameterValue {
	values := make(map[string]*modelruntimev1.ParameterValue, len(raw))
	for name, text := range raw {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			values[name] = &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_IntValue{IntValue: n}}
		} else if f, err := strconv.ParseFloat(text, 64); err == nil {
			values[name] = &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_FloatValue{FloatValue: f}}
		} else if b, err := strconv.ParseBool(text); err == nil {
			values[name] = &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_BoolValue{BoolValue: b}}
		} else {
			values[name] = &modelruntimev1.ParameterValue{Kind: &modelruntimev1.ParameterValue_StringValue{StringValue: text}}
		}
	}
	return values
}

func grpcError(err error) error {
	st, _ := status.FromError(err)
	return fmt.Errorf("grpc %s: %s", st.Code(), truncate(st.Message(), 160))
}

func httpStreamer(cfg config) (streamFunc, func()) {
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.concurrency + 16,
		MaxIdleConnsPerHost: cfg.concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     16 << 10,
	}
	client := &http.Client{Transport: transport}
	url := strings.TrimRight(cfg.target, "/") + "/chat/completions"
	body, _ := json.Marshal(map[string]any{
		"model":          cfg.model,
		"messages":       []any{map[string]any{"role": "user", "content": cfg.prompt}},
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	})
	run := func(ctx context.Context, onFirst func(string) bool) outcome {
		var o outcome
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		if cfg.apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.apiKey)
		}
		resp, err := client.Do(req)
		if err != nil {
			o.err = fmt.Errorf("http: %s", truncate(err.Error(), 160))
			o.total = time.Since(start)
			return o
		}
		// Closing the body before its end closes the connection: that is how a client cancels.
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			text, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			o.err = fmt.Errorf("http %d: %s", resp.StatusCode, truncate(string(text), 160))
			o.total = time.Since(start)
			return o
		}
		reader := bufio.NewReaderSize(resp.Body, 64<<10)
		sawDone := false
		var frame sseChunk
		for !sawDone {
			line, err := reader.ReadSlice('\n')
			if err != nil && !(err == io.EOF && len(line) > 0) {
				if err == io.EOF {
					o.err = errors.New("stream ended without [DONE]")
				} else {
					o.err = fmt.Errorf("read: %s", truncate(err.Error(), 160))
				}
				break
			}
			payload, ok := bytes.CutPrefix(line, []byte("data:"))
			if !ok {
				continue // blank separators, comments, other fields
			}
			payload = bytes.TrimSpace(payload)
			if bytes.Equal(payload, []byte("[DONE]")) {
				sawDone = true
				// Read the body to its end (the chunked terminator follows [DONE]), or the
				// transport closes the connection instead of reusing it.
				_, _ = io.Copy(io.Discard, io.LimitReader(reader, 64<<10))
				break
			}
			o.messages++
			frame = sseChunk{}
			if err := json.Unmarshal(payload, &frame); err != nil {
				o.err = fmt.Errorf("bad chunk: %s", truncate(string(payload), 160))
				break
			}
			if frame.Error != nil {
				o.err = fmt.Errorf("error event: %s", truncate(string(frame.Error), 160))
				break
			}
			for _, choice := range frame.Choices {
				text := choice.Delta.Content
				if text == "" {
					continue
				}
				o.chunks++
				if o.chunks == 1 {
					o.ttft = time.Since(start)
					if onFirst(text) {
						o.cancelUnix = time.Now().UnixNano()
						resp.Body.Close()
						o.cancelTag = tagOf(text)
						o.total = time.Since(start)
						return o
					}
				}
			}
		}
		o.total = time.Since(start)
		return o
	}
	return run, transport.CloseIdleConnections
}

type sseChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// tagOf returns the "#<n>" the upstream put at the start of a tagged stream's first chunk.
func tagOf(text string) string {
	if !strings.HasPrefix(text, "#") {
		return ""
	}
	tag, _, _ := strings.Cut(text, " ")
	return tag
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ---- the worker loop and the report ----------------------------------------------------------

type report struct {
	Mode              string         `json:"mode"`
	Target            string         `json:"target"`
	Model             string         `json:"model"`
	Concurrency       int            `json:"concurrency"`
	Cancel            bool           `json:"cancel"`
	Requests          int            `json:"requests"`
	RequestsOK        int            `json:"requests_ok"`
	Errors            int            `json:"errors"`
	ChunkMismatches   int            `json:"chunk_mismatches"`
	ErrorSamples      map[string]int `json:"error_samples"`
	WallSeconds       float64        `json:"wall_seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	Chunks            int64          `json:"chunks"`
	Messages          int64          `json:"messages"`
	ChunksPerSecond   float64        `json:"chunks_per_second"`
	TTFTms            percentiles    `json:"ttft_ms"`
	Totalms           percentiles    `json:"total_ms"`
	// How long failed requests ran before failing: an error at once is not a timeout.
	ErrorAfterms  percentiles    `json:"error_after_ms"`
	MaxInFlight   int64          `json:"max_in_flight"`
	CPU           cpuTimes       `json:"cpu"`
	Cancels       []cancelRecord `json:"cancels,omitempty"`
	StartUnixNano int64          `json:"start_unix_nano"`
	EndUnixNano   int64          `json:"end_unix_nano"`
}

type percentiles struct {
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    int     `json:"n"`
}

type cpuTimes struct {
	User   float64 `json:"user_seconds"`
	System float64 `json:"system_seconds"`
	Total  float64 `json:"total_seconds"`
}

type cancelRecord struct {
	Tag      string `json:"tag"`
	UnixNano int64  `json:"unix_nano"`
}

func drive(cfg config, run streamFunc) report {
	var started atomic.Int64
	var inFlight, maxInFlight atomic.Int64
	results := make([][]outcome, cfg.concurrency)
	cpuBefore := rusage()
	start := time.Now()
	deadline := time.Time{}
	if cfg.duration > 0 {
		deadline = start.Add(cfg.duration)
	}
	onFirst := func(string) bool { return cfg.cancel }

	var wg sync.WaitGroup
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if cfg.ramp > 0 && cfg.concurrency > 1 {
				time.Sleep(cfg.ramp * time.Duration(w) / time.Duration(cfg.concurrency))
			}
			for {
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				// Before taking a request from the count: a worker done with its one request
				// must not take a late worker's.
				if cfg.oneEach && len(results[w]) > 0 {
					return
				}
				if cfg.requests > 0 && started.Add(1) > int64(cfg.requests) {
					return
				}
				n := inFlight.Add(1)
				for {
					peak := maxInFlight.Load()
					if n <= peak || maxInFlight.CompareAndSwap(peak, n) {
						break
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
				o := run(ctx, onFirst)
				cancel()
				inFlight.Add(-1)
				results[w] = append(results[w], o)
			}
		}(w)
	}
	wg.Wait()
	end := time.Now()
	cpuAfter := rusage()

	r := report{
		Mode: cfg.mode, Target: cfg.target, Model: cfg.model, Concurrency: cfg.concurrency,
		Cancel: cfg.cancel, ErrorSamples: map[string]int{}, MaxInFlight: maxInFlight.Load(),
		StartUnixNano: start.UnixNano(), EndUnixNano: end.UnixNano(),
		CPU: cpuTimes{
			User:   cpuAfter.User - cpuBefore.User,
			System: cpuAfter.System - cpuBefore.System,
		},
	}
	r.CPU.Total = r.CPU.User + r.CPU.System
	r.WallSeconds = end.Sub(start).Seconds()
	var ttfts, totals, failures []float64
	for _, worker := range results {
		for _, o := range worker {
			r.Requests++
			r.Chunks += int64(o.chunks)
			r.Messages += int64(o.messages)
			if cfg.cancel {
				if o.err == nil && o.cancelTag != "" {
					r.RequestsOK++
					ttfts = append(ttfts, ms(o.ttft))
					r.Cancels = append(r.Cancels, cancelRecord{Tag: o.cancelTag, UnixNano: o.cancelUnix})
				} else {
					r.Errors++
					sample(r.ErrorSamples, errorKind(o.err, "no tagged first chunk to cancel at"))
				}
				continue
			}
			switch {
			case o.err != nil:
				r.Errors++
				failures = append(failures, ms(o.total))
				sample(r.ErrorSamples, errorKind(o.err, ""))
			case cfg.expectChunks > 0 && o.chunks != cfg.expectChunks:
				r.Errors++
				r.ChunkMismatches++
				sample(r.ErrorSamples, fmt.Sprintf("got %d content chunks, want %d", o.chunks, cfg.expectChunks))
			default:
				r.RequestsOK++
				ttfts = append(ttfts, ms(o.ttft))
				totals = append(totals, ms(o.total))
			}
		}
	}
	if r.WallSeconds > 0 {
		r.RequestsPerSecond = float64(r.RequestsOK) / r.WallSeconds
		r.ChunksPerSecond = float64(r.Chunks) / r.WallSeconds
	}
	r.TTFTms = percentilesOf(ttfts)
	r.Totalms = percentilesOf(totals)
	r.ErrorAfterms = percentilesOf(failures)
	return r
}

// errorKind is an error's message without its numbers (ports, durations), which vary from one
// request to the next: one kind of error makes one entry of the samples.
func errorKind(err error, fallback string) string {
	if err == nil {
		return fallback
	}
	return digits.ReplaceAllString(err.Error(), "N")
}

func sample(samples map[string]int, key string) {
	if _, seen := samples[key]; seen || len(samples) < 8 {
		samples[key]++
	}
}

var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentilesOf(values []float64) percentiles {
	if len(values) == 0 {
		return percentiles{}
	}
	sort.Float64s(values)
	at := func(q float64) float64 {
		// Nearest rank: the smallest value with at least q of the values at or below it.
		i := int(q*float64(len(values))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(values) {
			i = len(values) - 1
		}
		return values[i]
	}
	var sum float64
	for _, v := range values {
		sum += v
	}
	return percentiles{
		Min: values[0], P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: values[len(values)-1],
		Mean: sum / float64(len(values)), N: len(values),
	}
}

func rusage() cpuTimes {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return cpuTimes{
		User:   float64(u.Utime.Sec) + float64(u.Utime.Usec)/1e6,
		System: float64(u.Stime.Sec) + float64(u.Stime.Usec)/1e6,
	}
}
