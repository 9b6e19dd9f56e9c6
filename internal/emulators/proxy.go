package emulators

import (
	"fmt"
	"net"
	"sync"
)

// Proxy forwards TCP connections from its own port on 127.0.0.1 to a
// server, and can cut the server off: tests use it to take an emulator
// away for a while and bring it back with its data, as a network outage
// or a restarting service would.
type Proxy struct {
	// Addr is the proxy's host:port, to use in place of the server's.
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	held  chan struct{} // closed by Release; nil while bytes flow
	wg    sync.WaitGroup
}

// StartProxy starts a proxy to target (host:port) on a free port.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: %w", target, err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

// Down cuts the server off: the proxy stops listening, so a new
// connection is refused, and closes every open connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Up listens again on the same address.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		return fmt.Errorf("proxy to %s: listen again on %s: %w", p.target, p.Addr, err)
	}
	p.serveLocked(ln)
	return nil
}

// Hold stops forwarding bytes, both ways, on every connection, open or
// new, until Release: the server is there but does not answer, as a
// slow or overloaded one would not. Requests sent meanwhile stay in
// flight.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// Release forwards what Hold kept back, and everything after it.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// gate returns a channel to wait on before forwarding: closed at once
// unless held.
func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		return closedGate
	}
	return p.held
}

var closedGate = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Close cuts the server off for good and waits for the proxy's
// goroutines.
func (p *Proxy) Close() {
	p.Down()
	p.Release() // what was held goes to closed connections, and ends
	p.wg.Wait()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(ln)
}

func (p *Proxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Down
			}
			p.forward(c)
		}
	}()
}

// forward pipes c to a new connection to the target, both ways, until
// either side closes or Down closes both.
func (p *Proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		// The copy ends when either side closes (or Down closes both);
		// its error says only which, and closing both ends the pair.
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				<-p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	p.wg.Add(2)
	go pipe(s, c)
	go pipe(c, s)
}

// StartProxyForTest starts a proxy to target for a test, closed when it
// ends.
func StartProxyForTest(t TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.Close)
	return p
}
