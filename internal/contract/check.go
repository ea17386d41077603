package contract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// A check records exchanges as they happen and validates them when the test
// ends (after its servers stopped), so that the validation's work does not
// compete with the media a test records; identical exchanges are validated
// once. Paths under /api/test/ are routes a test registers for itself and
// are not checked.
type check struct {
	doc  *Doc
	mu   sync.Mutex
	seen map[[32]byte]bool
	log  []exchange
}

// exchange is one request and its response, as the check saw them.
type exchange struct {
	req      *http.Request
	body     []byte
	status   int
	header   http.Header
	respBody []byte
}

func newCheck(t testing.TB, doc *Doc) *check {
	c := &check{doc: doc, seen: map[[32]byte]bool{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, x := range c.log {
			if err := doc.Validate(x.req, x.body, x.status, x.header, x.respBody); err != nil {
				t.Errorf("contract (api/openapi.json): %s %s → %d: %v\n  response: %.400s", x.req.Method, x.req.URL.RequestURI(), x.status, err, x.respBody)
			}
		}
	})
	return c
}

func (c *check) record(req *http.Request, body []byte, status int, header http.Header, respBody []byte) {
	if strings.HasPrefix(req.URL.Path, "/api/test/") {
		return
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%s %s %d %q %q", req.Method, req.URL.RequestURI(), status, body, respBody)
	var k [32]byte
	copy(k[:], sum.Sum(nil))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen[k] {
		c.seen[k] = true
		c.log = append(c.log, exchange{req, body, status, header, respBody})
	}
}

// maxBody is how much of a body is kept for the validation.
const maxBody = 1 << 20

// teeBody returns a copy of up to maxBody bytes of r's body and gives r a
// body that still reads the whole of it.
func teeBody(r *http.Request) []byte {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	return body
}

// Handler wraps a server's handler: every exchange it serves is validated
// against doc when t ends; violations are reported on t.
func Handler(t testing.TB, doc *Doc, h http.Handler) http.Handler {
	c := newCheck(t, doc)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := teeBody(r)
		req := r.Clone(context.Background())
		cw := &capture{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.status = http.StatusOK
		}
		c.record(req, body, cw.status, cw.Header().Clone(), bytes.Clone(cw.body.Bytes()))
	})
}

// capture records a response's status and (up to maxBody) body while
// passing it on.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len() < maxBody {
		c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Transport wraps a client's transport (nil: http.DefaultTransport): every
// exchange with a server whose URL starts with server (scheme and host:
// "http://127.0.0.1:8080") is validated against doc when t ends. Requests to
// other hosts (signed URLs of a storage) are passed on unchecked.
func Transport(t testing.TB, doc *Doc, server string, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := newCheck(t, doc)
	t.Cleanup(func() { // runs before the validation: a check that saw nothing is no check
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.seen) == 0 {
			t.Errorf("contract: no exchange with %s was seen: the client talks to another server", server)
		}
	})
	return &transport{c: c, server: strings.TrimSuffix(server, "/"), next: rt}
}

type transport struct {
	c      *check
	server string
	next   http.RoundTripper
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme+"://"+r.URL.Host != tr.server {
		return tr.next.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	body := teeBody(r)
	req := r.Clone(context.Background())
	resp, err := tr.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &recordedBody{ReadCloser: resp.Body, json: isJSON(resp.Header.Get("Content-Type")), done: func(b []byte) {
		tr.c.record(req, body, resp.StatusCode, resp.Header.Clone(), b)
	}}
	return resp, nil
}

// recordedBody keeps what the client reads of a response body (up to
// maxBody) and hands it over once, at the end of the body or at its close.
type recordedBody struct {
	io.ReadCloser
	json bool // a JSON body
	buf  bytes.Buffer
	once sync.Once
	done func([]byte)
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.buf.Len() < maxBody {
		b.buf.Write(p[:min(n, maxBody-b.buf.Len())])
	}
	if err == io.EOF {
		b.finish()
	}
	return n, err
}

// Close keeps the rest of a JSON body the client did not read (a decoder
// stops after the value), so that the check sees all of it; other bodies
// (an event stream, a file) are kept as far as they were read.
func (b *recordedBody) Close() error {
	if b.json && b.buf.Len() < maxBody {
		io.Copy(&b.buf, io.LimitReader(b.ReadCloser, int64(maxBody-b.buf.Len())))
	}
	b.finish()
	return b.ReadCloser.Close()
}

func (b *recordedBody) finish() { b.once.Do(func() { b.done(bytes.Clone(b.buf.Bytes())) }) }
