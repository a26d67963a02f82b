package tunnel

import "errors"

var (
	// ErrUnknownTunnel means no tunnel of that name is configured.
	ErrUnknownTunnel = errors.New("unknown tunnel")
	// ErrSPIInUse means an inbound SA with that SPI is installed already
	// (SPIs of inbound SAs are unique per manager: they demultiplex the
	// shared socket). Pick another SPI.
	ErrSPIInUse = errors.New("inbound SPI already in use")
	// ErrNoInbound means InstallOutbound named an inbound pair that is not
	// installed: install the inbound SA first.
	ErrNoInbound = errors.New("paired inbound SA not installed")
	// ErrNoSA means no SA with that SPI is installed in that tunnel.
	ErrNoSA = errors.New("no such SA")
	// ErrNoSocket means an SA's local endpoint has no socket of the
	// manager; only the tunnels' configured local endpoints have one.
	ErrNoSocket = errors.New("no socket for that local address")
	// ErrClosed means the manager is closed.
	ErrClosed = errors.New("tunnel manager closed")
)
