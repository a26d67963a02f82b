package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/daemon"
	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the gateway daemon",
		Long: `Run the gateway daemon in the foreground.

Signals: SIGTERM and SIGINT drain (release VIPs, withdraw routes) and exit 0;
SIGHUP reloads the config file (a bad one is rejected, the running one kept).
Under systemd (Type=notify) it reports READY, STOPPING and watchdog pings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), path)
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "/etc/havpn/havpn.yaml", "config file")
	return c
}

func runDaemon(parent context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigErrors(os.Stderr, err)
		return silentError{exitFailure}
	}
	log, level, err := daemon.NewLogger(cfg, os.Stderr)
	if err != nil {
		return err
	}
	d, err := daemon.New(cfg, daemon.Options{Log: log, Level: level})
	if err != nil {
		return err
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.Reload() // Reload logs its own outcome.
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}
