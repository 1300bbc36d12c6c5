package feedtest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// Proxy puts an HTTP reverse proxy in front of a real node, so that tests can
// make the node's answers slow, failing or hostile. rewrite, if not nil, may
// replace a response's status and body (it gets the body read in full);
// delay holds every answer back.
type Proxy struct {
	URL     string
	Delay   time.Duration
	Rewrite func(r *http.Response, body []byte) (status int, newBody []byte)
	// OnRequest, if set, sees every request as it arrives, while its
	// connection is certainly open.
	OnRequest func(r *http.Request)
}

// NewProxy starts a proxy to target, closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if p.Delay > 0 {
			time.Sleep(p.Delay)
		}
		if p.Rewrite == nil {
			return nil
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		status, body := p.Rewrite(r, body)
		r.StatusCode = status
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Del("Content-Length")
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.OnRequest != nil {
			p.OnRequest(r)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}
