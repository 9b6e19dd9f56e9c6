package collector

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/railyard/railyard/internal/emulators"
)

func TestAPIKeys(t *testing.T) {
	keys, err := ParseAPIKeys(fmt.Sprintf("# keys\nshop %s web-shop,web-blog\n\nops %s *\n", HashKey("shop-secret"), HashKey("ops-secret")))
	if err != nil {
		t.Fatal(err)
	}
	f := startEdge(t, func(c *Config) { c.Auth = AuthAPIKey; c.Keys = keys })
	other := strings.Replace(event("k-2"), "web-shop", "pos-till", 1)
	for _, tt := range []struct {
		name     string
		header   map[string]string
		body     string
		want     int
		wantCode string
		wantKey  string // the key name stamped on what was published
	}{
		{name: "no key is 401 and says where the key goes", body: event("k-1"), want: 401, wantCode: codeNoKey},
		{name: "an unknown key is 401", header: map[string]string{HeaderAPIKey: "guess"}, body: event("k-1"), want: 401, wantCode: codeUnknownKey},
		{name: "a key sending a source it is not bound to is 403 and nothing is published", header: map[string]string{HeaderAPIKey: "shop-secret"},
			body: "[" + event("k-1") + "," + other + "]", want: 403, wantCode: codeSourceNotAllowed},
		{name: "a key sending its own source is accepted and named on the message", header: map[string]string{HeaderAPIKey: "shop-secret"},
			body: event("k-1"), want: 200, wantKey: "shop"},
		{name: "a bearer token is a key too", header: map[string]string{"Authorization": "Bearer shop-secret"},
			body: event("k-1"), want: 200, wantKey: "shop"},
		{name: "a key bound to every source sends any", header: map[string]string{HeaderAPIKey: "ops-secret"},
			body: other, want: 200, wantKey: "ops"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := f.post("application/json", "", strings.NewReader(tt.body), tt.header)
			if a.status != tt.want || a.err.Error.Code != tt.wantCode {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, tt.want, tt.wantCode)
			}
			if tt.want == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			msgs := f.published()
			if tt.wantKey == "" {
				if len(msgs) != 0 {
					t.Fatalf("published %d messages, want none", len(msgs))
				}
				return
			}
			if len(msgs) != 1 || string(msgs[0].Data) != tt.body || msgs[0].Attributes[AttrAPIKey] != tt.wantKey {
				t.Fatalf("published %v, want the body with %s=%s", msgs, AttrAPIKey, tt.wantKey)
			}
		})
	}
}

func TestParseAPIKeys(t *testing.T) {
	for _, tt := range []struct {
		name, text, wantErr string
	}{
		{"a key in clear text is refused", "shop shop-secret web-shop", "sha256:<64 hex digits>"},
		{"a short hash is refused", "shop sha256:abcd web-shop", "sha256:<64 hex digits>"},
		{"a line without sources is refused", "shop " + HashKey("k"), "want NAME sha256:HEX"},
		{"an empty source is refused", "shop " + HashKey("k") + " web-shop,", "not a source"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAPIKeys(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "shop-secret") {
				t.Errorf("the error %q repeats the key", err)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	f := startEdge(t, func(c *Config) { c.AllowedOrigins = []string{"https://shop.example"} })
	preflight := func(origin string) answer {
		req, _ := http.NewRequest(http.MethodOptions, f.url+PathEvents, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		return f.do(req)
	}
	t.Run("a preflight from an allowed origin is answered with what it may send", func(t *testing.T) {
		a := preflight("https://shop.example")
		if a.status != 204 || a.header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			!strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Fatalf("%d %v", a.status, a.header)
		}
	})
	t.Run("a preflight from another origin is 403", func(t *testing.T) {
		if a := preflight("https://evil.example"); a.status != 403 || a.header.Get("Access-Control-Allow-Origin") != "" || a.err.Error.Code != codeOriginNotAllowed {
			t.Fatalf("%d %v %s", a.status, a.header, a.body)
		}
	})
	t.Run("a post from an allowed origin may read its answer", func(t *testing.T) {
		a := f.post("application/json", "", strings.NewReader(event("c-1")), map[string]string{"Origin": "https://shop.example"})
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("%d %v", a.status, a.header)
		}
	})
	t.Run("a post from another origin is 403 and not published", func(t *testing.T) {
		f.published()
		a := f.post("application/json", "", strings.NewReader(event("c-2")), map[string]string{"Origin": "https://evil.example"})
		if a.status != 403 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if msgs := f.published(); len(msgs) != 0 {
			t.Fatalf("published %d", len(msgs))
		}
	})
}

func TestClientIPOnlyWhenAsked(t *testing.T) {
	f := startEdge(t, func(c *Config) { c.ClientIPAttribute = true })
	if a := f.post("application/json", "", strings.NewReader(event("ip-1")), nil); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	msgs := f.published()
	if len(msgs) != 1 || msgs[0].Attributes[AttrClientIP] != "127.0.0.1" {
		t.Fatalf("published %v, want %s=127.0.0.1", msgs, AttrClientIP)
	}
}

// TestPubSubDown cuts the edge off Pub/Sub (a proxy that refuses
// connections): records are answered 503 with Retry-After, none as
// accepted, and readiness fails; once Pub/Sub is back, they go through.
func TestPubSubDown(t *testing.T) {
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	proxy := emulators.StartProxyForTest(t, ps.Host)
	f := startEdgeOn(t, ps, proxy.Addr, func(c *Config) { c.PublishTimeout = 2 * time.Second })
	body := event("d-1") + "\n" + event("d-2") + "\n"

	proxy.Down()
	start := time.Now()
	a := f.post("application/x-ndjson", "", strings.NewReader(body), nil)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("with Pub/Sub down: %d (Retry-After %q) %s, want 503 with Retry-After", a.status, a.header.Get("Retry-After"), a.body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the answer took %v, want within --publish_timeout (2s) and a margin", took)
	}
	if a.resp.Accepted != 0 || a.resp.Failed != 2 {
		t.Errorf("accepted %d failed %d, want 0 and 2: %s", a.resp.Accepted, a.resp.Failed, a.body)
	}
	for _, r := range a.resp.Records {
		if r.Status != statusFailed || (r.Reason != failUnavailable && r.Reason != failTimeout) {
			t.Errorf("record %+v, want failed, unavailable or timeout", r)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+PathReadyz, nil)
	if r := f.do(req); r.status != 503 {
		t.Errorf("readyz with Pub/Sub down: %d %s, want 503", r.status, r.body)
	}
	if msgs := f.published(); len(msgs) != 0 {
		t.Fatalf("Pub/Sub holds %d messages published while it was cut off", len(msgs))
	}

	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	var b answer
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b = f.post("application/x-ndjson", "", strings.NewReader(body), nil); b.status == 200 {
			break
		}
	}
	if b.status != 200 || b.resp.Accepted != 2 {
		t.Fatalf("Pub/Sub back: %d %s, want 200 with both accepted", b.status, b.body)
	}
	if got := datas(f.published()); !slices.Equal(got, []string{event("d-1"), event("d-2")}) {
		t.Fatalf("published %q", got)
	}
}

// TestFlowControlFull sends more records at once than the publisher may
// hold: those beyond are answered failed with 429 and Retry-After, and
// exactly the accepted ones are published. Pub/Sub is held (connected,
// not answering) while the request is read and published, so nothing
// completes to make room: the first 100 are accepted and the other 50
// fail. The cap is on what is outstanding, not on the request, so
// without the hold publishes that complete meanwhile make room, and on
// a fast machine all 150 were once accepted.
func TestFlowControlFull(t *testing.T) {
	ps := emulators.StartPubSub()
	t.Cleanup(func() { ps.Close() })
	proxy := emulators.StartProxyForTest(t, ps.Host)
	f := startEdgeOn(t, ps, proxy.Addr, func(c *Config) { c.MaxOutstandingMessages = 100 })
	var body strings.Builder
	for i := range 150 {
		body.WriteString(event(fmt.Sprintf("f-%d", i)) + "\n")
	}
	proxy.Hold()
	// The handler publishes all 150 in one loop of microseconds, then
	// waits for the held ones; a second is ample for the loop. Should a
	// stalled machine take longer, the release frees room and more are
	// accepted, which the checks below allow.
	released := time.AfterFunc(time.Second, proxy.Release)
	defer released.Stop()
	a := f.post("application/x-ndjson", "", strings.NewReader(body.String()), nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("%d (Retry-After %q), want 429 with Retry-After: %.300s", a.status, a.header.Get("Retry-After"), a.body)
	}
	var accepted []string
	for _, r := range a.resp.Records {
		switch {
		case r.Status == statusAccepted:
			accepted = append(accepted, event(fmt.Sprintf("f-%d", r.Index)))
		case r.Status != statusFailed || r.Reason != failFlowControl:
			t.Errorf("record %+v, want accepted or failed flow_control", r)
		}
	}
	if len(accepted) < 100 || a.resp.Failed == 0 || a.resp.Failed != 150-len(accepted) {
		t.Errorf("accepted %d failed %d, want at least the 100 the publisher may hold accepted, the others failed", len(accepted), a.resp.Failed)
	}
	if got := datas(f.published()); !slices.Equal(got, accepted) {
		t.Fatalf("published %d messages, want exactly the %d accepted", len(got), len(accepted))
	}
}

// TestShutdownInFlight shuts the edge down while requests are in flight
// (each has sent half of its body): every one is answered, every record
// answered accepted is in the subscription, Serve returns cleanly within
// the shutdown timeout, and a request after it is refused.
func TestShutdownInFlight(t *testing.T) {
	f := startEdge(t, nil)
	const clients, perRequest = 20, 50
	type result struct {
		status   int
		accepted []string
		err      error
	}
	results := make([]result, clients)
	halfSent := make(chan struct{}, clients)
	finish := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lines []string
			for i := range perRequest {
				lines = append(lines, event(fmt.Sprintf("s-%d-%d", c, i)))
			}
			body := strings.Join(lines, "\n")
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte(body[:len(body)/2]))
				halfSent <- struct{}{}
				<-finish
				pw.Write([]byte(body[len(body)/2:]))
				pw.Close()
			}()
			req, _ := http.NewRequest(http.MethodPost, f.url+PathEvents, pr)
			req.Header.Set("Content-Type", "application/x-ndjson")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				results[c].err = err
				return
			}
			defer res.Body.Close()
			results[c].status = res.StatusCode
			var a Response
			if err := decodeJSON(res.Body, &a); err != nil {
				results[c].err = err
				return
			}
			for _, r := range a.Records {
				if r.Status == statusAccepted {
					results[c].accepted = append(results[c].accepted, lines[r.Index])
				}
			}
		}()
	}
	for range clients {
		<-halfSent
	}
	time.Sleep(100 * time.Millisecond) // the halves reach the server
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- f.shutdown() }()
	time.Sleep(200 * time.Millisecond) // the listener closes; the requests stay in flight
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(f.url, "http://"), time.Second); err == nil {
		conn.Close()
		t.Errorf("a new connection was taken during shutdown")
	}
	close(finish)
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took := time.Since(start); took > testConfig("").ShutdownTimeout {
		t.Errorf("shutdown took %v", took)
	}
	var want []string
	for c, r := range results {
		if r.err != nil || r.status != 200 || len(r.accepted) != perRequest {
			t.Errorf("client %d: status %d, %d accepted, error %v: want 200 with all %d accepted", c, r.status, len(r.accepted), r.err, perRequest)
		}
		want = append(want, r.accepted...)
	}
	got := datas(f.published())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the subscription holds %d messages, want the %d accepted", len(got), len(want))
	}
}

// TestSlowClients holds connections open without finishing headers, or
// a body: the edge cuts them off at its timeouts.
func TestSlowClients(t *testing.T) {
	f := startEdge(t, func(c *Config) { c.ReadHeaderTimeout = 300 * time.Millisecond; c.ReadTimeout = time.Second })
	addr := strings.TrimPrefix(f.url, "http://")
	t.Run("a client that never finishes its headers is disconnected", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\n", PathEvents)
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(conn)
		if err != nil || time.Since(start) > 3*time.Second {
			t.Fatalf("connection still open after %v (%v), want closed after the 300ms header timeout", time.Since(start), err)
		}
	})
	t.Run("a client that stops sending its body is answered 408", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := event("slow-1")
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", PathEvents, len(body), body[:10])
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", res.StatusCode)
		}
		if msgs := f.published(); len(msgs) != 0 {
			t.Fatalf("published %d", len(msgs))
		}
	})
}

func decodeJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return jsonUnmarshal(b, v)
}
