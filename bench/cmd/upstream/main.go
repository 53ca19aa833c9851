// Command upstream is the benchmark's fake OpenAI-compatible server. It streams
// chat.completion.chunk frames as fast as a client reads them (or at a fixed interval), so that
// whatever sits between it and the load generator is what gets measured.
//
// A request chooses its stream through its model name, because the model name is the one thing
// every gateway passes through unchanged: "bench-chunks64-interval50ms-tag" asks for 64 content
// chunks, 50 ms apart, the first one tagged "#<request number> " so that a client's cancel can be
// matched with the close this server records. The X-Bench-Chunks, X-Bench-Interval-Ms,
// X-Bench-Text and X-Bench-Tag headers override the name for direct callers; the flags give the
// defaults.
//
// GET /_stats reports counters, the streams open now and at most since the last reset, this
// process's CPU time and every connection a client closed before its stream's end, with
// wall-clock UnixNano times; POST /_reset clears the record of closes and the peak.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type streamSpec struct {
	chunks   int
	interval time.Duration
	// The chunks cycle through these words: real answers do not repeat one chunk, and LiteLLM
	// fails a stream that repeats the same chunk too often.
	words []string
	tag   bool
}

// earlyClose is one stream whose client went away before the end.
type earlyClose struct {
	Request    uint64 `json:"request"`
	Tag        string `json:"tag,omitempty"`
	UnixNano   int64  `json:"unix_nano"`
	ChunksSent int    `json:"chunks_sent"`
}

type server struct {
	defaults  streamSpec
	roleChunk bool
	maxRecord int

	requests    atomic.Uint64
	connections atomic.Uint64 // TCP connections accepted: shows whether a gateway pools them
	completed   atomic.Uint64
	// Streams open right now and the most open at once since the last reset: how many streams
	// a gateway really holds open upstream, whatever its clients asked for.
	active atomic.Int64
	peak   atomic.Int64
	closed atomic.Uint64
	chunks atomic.Uint64

	mu     sync.Mutex
	closes []earlyClose
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "host:port to listen on (port 0 picks one)")
	readyFile := flag.String("ready-file", "", "write the address listened on to this file once serving")
	chunks := flag.Int("chunks", 64, "content chunks per stream when the request does not say")
	interval := flag.Duration("interval", 0, "pause before each content chunk after the first")
	text := flag.String("text", "The quick brown fox jumps over the lazy dog", "the words the content chunks cycle through, one word (and a space) each")
	roleChunk := flag.Bool("role-chunk", true, `send OpenAI's opening {"role":"assistant","content":""} chunk`)
	maxRecord := flag.Int("max-record", 100000, "early closes kept for /_stats (the oldest are dropped)")
	flag.Parse()

	s := &server{
		defaults:  streamSpec{chunks: *chunks, interval: *interval, words: strings.Fields(*text)},
		roleChunk: *roleChunk,
		maxRecord: *maxRecord,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("POST /chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /models", s.models)
	mux.HandleFunc("GET /_stats", s.stats)
	mux.HandleFunc("POST /_reset", s.reset)

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	if *readyFile != "" {
		// Written whole then renamed, so a reader polling for it never sees half an address.
		tmp := *readyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(listener.Addr().String()), 0o644); err != nil {
			log.Fatalf("upstream: %v", err)
		}
		if err := os.Rename(tmp, *readyFile); err != nil {
			log.Fatalf("upstream: %v", err)
		}
	}
	httpServer := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				s.connections.Add(1)
			}
		},
	}
	log.Fatal(httpServer.Serve(listener))
}

// specFor reads the stream a request asks for: defaults, then the model name, then headers.
func (s *server) specFor(model string, header http.Header) streamSpec {
	spec := s.defaults
	for _, part := range strings.Split(model, "-") {
		switch {
		case strings.HasPrefix(part, "chunks"):
			if n, err := strconv.Atoi(part[len("chunks"):]); err == nil && n >= 0 {
				spec.chunks = n
			}
		case strings.HasPrefix(part, "interval") && strings.HasSuffix(part, "ms"):
			if ms, err := strconv.Atoi(part[len("interval") : len(part)-2]); err == nil && ms >= 0 {
				spec.interval = time.Duration(ms) * time.Millisecond
			}
		case part == "tag":
			spec.tag = true
		}
	}
	if v := header.Get("X-Bench-Chunks"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			spec.chunks = n
		}
	}
	if v := header.Get("X-Bench-Interval-Ms"); v != "" {
		if ms, err := strconv.Atoi(v); err == nil && ms >= 0 {
			spec.interval = time.Duration(ms) * time.Millisecond
		}
	}
	if v := header.Get("X-Bench-Text"); v != "" {
		spec.words = strings.Fields(v)
	}
	if v := header.Get("X-Bench-Tag"); v != "" {
		spec.tag = v == "1" || v == "true"
	}
	return spec
}

type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a JSON chat request")
		return
	}
	// The whole body must be read for net/http to notice a client that closes its connection.
	_, _ = io.Copy(io.Discard, r.Body)
	number := s.requests.Add(1)
	spec := s.specFor(req.Model, r.Header)
	frames := newFrames(number, req.Model, spec)
	if !req.Stream {
		s.whole(w, frames, spec)
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	s.stream(w, r, number, frames, spec, includeUsage)
}

func (s *server) stream(w http.ResponseWriter, r *http.Request, number uint64, f *frames, spec streamSpec, includeUsage bool) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	header := w.Header()
	header.Set("Content-Type", "text/event-stream")
	header.Set("Cache-Control", "no-cache")
	header.Set("X-Request-Id", "bench-"+strconv.FormatUint(number, 10))
	w.WriteHeader(http.StatusOK)
	s.open()
	defer s.active.Add(-1)

	done := r.Context().Done()
	sent := 0
	gone := func() {
		s.recordClose(number, f.tag, sent)
	}
	write := func(frame []byte) bool {
		if _, err := w.Write(frame); err != nil {
			gone()
			return false
		}
		flusher.Flush()
		return true
	}
	if s.roleChunk && !write(f.role) {
		return
	}
	var timer *time.Timer
	if spec.interval > 0 {
		timer = time.NewTimer(spec.interval)
		defer timer.Stop()
	}
	for i := 0; i < spec.chunks; i++ {
		if i > 0 && timer != nil {
			timer.Reset(spec.interval)
			select {
			case <-done:
				gone()
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-done:
				gone()
				return
			default:
			}
		}
		frame := f.content[i%len(f.content)]
		if i == 0 {
			frame = f.firstContent
		}
		if !write(frame) {
			return
		}
		sent++
		s.chunks.Add(1)
	}
	if !write(f.finish) {
		return
	}
	if includeUsage && !write(f.usage) {
		return
	}
	if !write(doneFrame) {
		return
	}
	s.completed.Add(1)
}

// whole answers a non-streamed request (gateways check credentials and health this way).
func (s *server) whole(w http.ResponseWriter, f *frames, spec streamSpec) {
	var content strings.Builder
	if spec.tag {
		content.WriteString(f.tag + " ")
	}
	for i := 0; i < spec.chunks; i++ {
		content.WriteString(spec.words[i%len(spec.words)] + " ")
	}
	body := map[string]any{
		"id":      f.id,
		"object":  "chat.completion",
		"created": f.created,
		"model":   f.model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content.String()},
			"logprobs":      nil,
			"finish_reason": "stop",
		}},
		"usage": map[string]any{
			"prompt_tokens":     promptTokens,
			"completion_tokens": spec.chunks,
			"total_tokens":      promptTokens + spec.chunks,
		},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
	s.completed.Add(1)
	s.chunks.Add(uint64(spec.chunks))
}

func (s *server) open() {
	n := s.active.Add(1)
	for {
		peak := s.peak.Load()
		if n <= peak || s.peak.CompareAndSwap(peak, n) {
			return
		}
	}
}

func (s *server) recordClose(number uint64, tag string, sent int) {
	s.closed.Add(1)
	entry := earlyClose{Request: number, Tag: tag, UnixNano: time.Now().UnixNano(), ChunksSent: sent}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.closes) >= s.maxRecord {
		s.closes = s.closes[1:]
	}
	s.closes = append(s.closes, entry)
}

func (s *server) models(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"bench-chunks64","object":"model","created":1760000000,"owned_by":"bench"}]}`)
}

func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	s.mu.Lock()
	closes := append([]earlyClose(nil), s.closes...)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"requests":       s.requests.Load(),
		"connections":    s.connections.Load(),
		"completed":      s.completed.Load(),
		"active_streams": s.active.Load(),
		"peak_streams":   s.peak.Load(),
		"closed_early":   s.closed.Load(),
		"chunks_sent":    s.chunks.Load(),
		"cpu_seconds":    seconds(usage.Utime) + seconds(usage.Stime),
		"now_unix_nano":  time.Now().UnixNano(),
		"early_closes":   closes,
	})
}

func (s *server) reset(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.closes = nil
	s.mu.Unlock()
	s.peak.Store(s.active.Load())
	w.WriteHeader(http.StatusNoContent)
}

func seconds(t syscall.Timeval) float64 {
	return float64(t.Sec) + float64(t.Usec)/1e6
}

const promptTokens = 8

var doneFrame = []byte("data: [DONE]\n\n")

// frames holds one stream's SSE frames, built once per request so that sending a chunk is a
// write and a flush, nothing more.
type frames struct {
	id           string
	model        string
	created      int64
	tag          string
	role         []byte
	firstContent []byte
	content      [][]byte // one frame per word; chunk i sends content[i % len]
	finish       []byte
	usage        []byte
}

func newFrames(number uint64, model string, spec streamSpec) *frames {
	f := &frames{
		id:      "chatcmpl-bench-" + strconv.FormatUint(number, 10),
		model:   model,
		created: time.Now().Unix(),
	}
	if spec.tag {
		f.tag = "#" + strconv.FormatUint(number, 10)
	}
	modelJSON, _ := json.Marshal(model)
	head := fmt.Sprintf(`data: {"id":%q,"object":"chat.completion.chunk","created":%d,"model":%s,"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":{`,
		f.id, f.created, modelJSON)
	tail := `},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	words := spec.words
	if len(words) == 0 {
		words = []string{"hello"}
	}
	for _, word := range words {
		f.content = append(f.content, []byte(head+`"content":`+jsonString(word+" ")+tail))
	}
	first := words[0] + " "
	if spec.tag {
		first = f.tag + " " + first
	}
	f.role = []byte(head + `"role":"assistant","content":""` + tail)
	f.firstContent = []byte(head + `"content":` + jsonString(first) + tail)
	f.finish = []byte(head + `},"logprobs":null,"finish_reason":"stop"}]}` + "\n\n")
	f.usage = []byte(fmt.Sprintf(`data: {"id":%q,"object":"chat.completion.chunk","created":%d,"model":%s,"system_fingerprint":"fp_bench","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n",
		f.id, f.created, modelJSON, promptTokens, spec.chunks, promptTokens+spec.chunks))
	return f
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": message, "type": "invalid_request_error", "param": nil, "code": nil},
	})
}
