package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// Call sends one command to the daemon at socket and decodes the reply data
// into out (which may be nil). Errors from the daemon are *Error.
func Call(ctx context.Context, socket, command string, args, out any) error {
	raw, err := CallRaw(ctx, socket, command, args)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s reply: %w", command, err)
	}
	return nil
}

// CallRaw is Call returning the reply data undecoded.
func CallRaw(ctx context.Context, socket, command string, args any) (json.RawMessage, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, dialError(socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := Request{Version: Version, Command: command}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return nil, fmt.Errorf("encoding %s arguments: %w", command, err)
		}
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("sending %s to %s: %w", command, socket, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading %s reply from %s: %w", command, socket, err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Data, nil
}

func dialError(socket string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no daemon answers on %s (is `havpn run` running? use --socket to point elsewhere): %w", socket, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("control socket %s is root-only: %w", socket, err)
	}
	return fmt.Errorf("connecting to %s: %w", socket, err)
}
