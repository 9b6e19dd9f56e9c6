package emulators

import (
	"cloud.google.com/go/pubsub/v2/pstest"
)

// PubSub is an in-process pstest server listening on 127.0.0.1.
type PubSub struct {
	// Host is host:port, the value of PUBSUB_EMULATOR_HOST.
	Host string
	// Server is the pstest server, for inspecting what was acknowledged.
	Server *pstest.Server
}

// StartPubSub starts pstest on a free port of 127.0.0.1.
func StartPubSub() *PubSub {
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	return &PubSub{Host: srv.Addr, Server: srv}
}

// Env returns the environment that points the Go Pub/Sub client here.
func (p *PubSub) Env() map[string]string {
	return map[string]string{"PUBSUB_EMULATOR_HOST": p.Host}
}

// Close stops the server.
func (p *PubSub) Close() error { return p.Server.Close() }
