package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateRoot is where each lab keeps its state directory.
const StateRoot = "/run/havpn-lab"

// DefaultPrefix is the namespace prefix when none is given.
const DefaultPrefix = "havpn-"

// State is what a lab made, written as it is made.
type State struct {
	Prefix     string                `json:"prefix"`
	Created    time.Time             `json:"created"`
	Bin        string                `json:"bin"`
	Daemons    bool                  `json:"daemons"`
	Daemon     DaemonOptions         `json:"daemon"`
	Complete   bool                  `json:"complete"`
	Namespaces []string              `json:"namespaces"`
	Nodes      map[string]*NodeState `json:"nodes"`
}

// NodeState is one node's processes and files.
type NodeState struct {
	NS         string `json:"ns"`
	EchoPID    int    `json:"echo_pid,omitempty"`
	DaemonPID  int    `json:"daemon_pid,omitempty"`
	Config     string `json:"config,omitempty"`
	Socket     string `json:"socket,omitempty"`
	Log        string `json:"log,omitempty"`
	PoweredOff bool   `json:"powered_off,omitempty"`
}

// Dir returns the state directory of a prefix.
func Dir(prefix string) string { return filepath.Join(StateRoot, prefix) }

func statePath(prefix string) string { return filepath.Join(Dir(prefix), "state.json") }

// save writes the state atomically, so a crash leaves the old or the new
// file, never half of one.
func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Prefix) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	if err := os.Rename(tmp, statePath(s.Prefix)); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	return nil
}

// ErrNoLab means no lab with that prefix is up.
var ErrNoLab = errors.New("no lab is up with this prefix (havpn lab up)")

// LoadState reads a lab's state file.
func LoadState(prefix string) (*State, error) {
	b, err := os.ReadFile(statePath(prefix))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w", prefix, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("reading lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab state %s is damaged (run havpn lab down): %w", statePath(prefix), err)
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeState{}
	}
	return &s, nil
}
