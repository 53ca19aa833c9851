// Package testserver runs the real modelruntime server (the Python one, from the repository's
// .venv) on a loopback port, for the tests of this module.
package testserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinEnv names the environment variable that may point at the modelruntime executable. Without
// it, the executable is <repository root>/.venv/bin/modelruntime, which `make test-go` installs.
const BinEnv = "MODELRUNTIME_BIN"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// Server is a running modelruntime server.
type Server struct {
	// Addr is the host:port it listens on, on 127.0.0.1.
	Addr string

	cmd    *exec.Cmd
	dir    string
	logs   string
	exited chan struct{}
	err    error // the process's exit status, once exited is closed
}

// Start starts a server on 127.0.0.1 and a free port and waits until it serves.
func Start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "modelruntime-go-test-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, logs: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.logs)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	ready := filepath.Join(dir, "ready")
	s.cmd = exec.Command(bin, "serve", "--address", "127.0.0.1:0", "--ready-file", ready)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Env = append(cleanEnv(), "MODELRUNTIME_GRACE_PERIOD_SECONDS=2")
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()

	deadline := time.After(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			defer os.RemoveAll(dir)
			return nil, fmt.Errorf("modelruntime server exited before serving (%v)%s", s.err, s.tail())
		case <-deadline:
			err := fmt.Errorf("modelruntime server not serving after %s%s", startTimeout, s.tail())
			_ = s.Stop()
			return nil, err
		case <-tick.C:
			// The server writes the file whole (rename) once it serves.
			if addr, err := os.ReadFile(ready); err == nil {
				s.Addr = strings.TrimSpace(string(addr))
				return s, nil
			}
		}
	}
}

// Stop stops the server with SIGTERM (SIGKILL if it has not exited after 15 seconds) and
// reports an unclean exit.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.dir)
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
			return fmt.Errorf("modelruntime server did not stop within %s of SIGTERM%s", stopTimeout, s.tail())
		}
	}
	if s.err != nil {
		return fmt.Errorf("modelruntime server exited with %v%s", s.err, s.tail())
	}
	return nil
}

func (s *Server) tail() string {
	logs, _ := os.ReadFile(s.logs)
	lines := strings.Split(strings.TrimSpace(string(logs)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "\nserver log:\n" + strings.Join(lines, "\n")
}

// Shared is a server started by the first test that needs it and stopped by TestMain:
//
//	var server testserver.Shared
//
//	func TestMain(m *testing.M) { os.Exit(server.Run(m)) }
//
//	func TestX(t *testing.T) { addr := server.Addr(t); ... }
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Addr starts the server if this is the first call and returns its address; it fails the test
// when the server cannot start.
func (sh *Shared) Addr(t testing.TB) string {
	t.Helper()
	sh.once.Do(func() { sh.srv, sh.err = Start() })
	if sh.err != nil {
		t.Fatal(sh.err)
	}
	return sh.srv.Addr
}

// Run runs the tests, then stops the server if one was started. A server that does not stop
// cleanly fails the run.
func (sh *Shared) Run(m *testing.M) int {
	code := m.Run()
	if sh.srv != nil {
		if err := sh.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

func findBin() (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinEnv, bin, err)
		}
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".venv", "bin", "modelruntime")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("these tests run the real modelruntime server, and %s is missing: "+
			"run `make test-go` from %s (it installs the server first), or set %s to a modelruntime executable",
			bin, root, BinEnv)
	}
	return bin, nil
}

// repoRoot finds the repository from the working directory, which go test sets to the package.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "protos", "modelruntime", "v1")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the modelruntime repository above the working directory; set " + BinEnv)
		}
		dir = parent
	}
}

// cleanEnv is the environment without MODELRUNTIME_* settings, so a developer's own server
// configuration does not change what the tests run against.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MODELRUNTIME_") {
			env = append(env, kv)
		}
	}
	return env
}
