package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Handler answers one command. It returns the reply data (marshalled to
// JSON) or an error; errors that are not *Error are sent as CodeInternal.
type Handler func(ctx context.Context, args json.RawMessage) (any, error)

// maxRequest bounds a request so a client cannot make the daemon buffer
// without limit.
const maxRequest = 64 << 10

// ioTimeout bounds how long one connection may take to send its request
// and read the reply.
const ioTimeout = 10 * time.Second

// Server serves the control socket. Register handlers before Serve.
type Server struct {
	log      *slog.Logger
	ln       *net.UnixListener
	path     string
	handlers map[string]Handler
	wg       sync.WaitGroup
}

// Listen creates the socket at path (removing a stale one), root-only.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating control socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	old := syscall.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &Server{log: log, ln: ln, path: path, handlers: map[string]Handler{}}, nil
}

// removeStale removes a socket nobody answers on, and refuses to steal one
// that a running daemon still serves.
func removeStale(path string) error {
	if _, err := os.Lstat(path); os.IsNotExist(err) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by another daemon", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale control socket %s: %w", path, err)
	}
	return nil
}

// Close closes the listener (and removes the socket) without serving; use
// it when start-up fails after Listen.
func (s *Server) Close() error { return s.ln.Close() }

// Handle registers h for command.
func (s *Server) Handle(command string, h Handler) { s.handlers[command] = h }

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until ctx is done, then closes the listener and
// waits for the connections in flight.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting on control socket: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	resp := s.dispatch(ctx, c)
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		s.log.Debug("writing control reply", "err", err)
	}
}

func (s *Server) dispatch(ctx context.Context, c io.Reader) Response {
	var req Request
	dec := json.NewDecoder(&limitedReader{r: c, n: maxRequest})
	if err := dec.Decode(&req); err != nil {
		return errResponse(Errorf(CodeBadRequest, "reading request: %v", err))
	}
	if req.Version != Version {
		return errResponse(Errorf(CodeBadRequest, "protocol version %d not supported (daemon speaks %d)", req.Version, Version))
	}
	h, ok := s.handlers[req.Command]
	if !ok {
		return errResponse(Errorf(CodeUnknown, "unknown command %q", req.Command))
	}
	data, err := h(ctx, req.Args)
	if err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			ce = &Error{Code: CodeInternal, Message: err.Error()}
		}
		return errResponse(ce)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return errResponse(Errorf(CodeInternal, "encoding reply: %v", err))
	}
	return Response{Version: Version, Data: b}
}

func errResponse(e *Error) Response { return Response{Version: Version, Error: e} }

type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too large")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}
