package main

import (
	"fmt"
	"io"

	"github.com/havpn/havpn/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Check and show config files",
	}
	c.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Validate a config file; print every error with file:line:column (exit 1 on errors)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return configFailure(cmd, g, args[0], err)
			}
			type ok struct {
				File  string `json:"file"`
				Valid bool   `json:"valid"`
				Hash  string `json:"hash"`
			}
			v := ok{args[0], true, cfg.Hash()}
			return render(cmd.OutOrStdout(), g.output, v, func(t *table) {
				t.row(args[0] + ": valid, hash " + v.Hash)
			})
		},
	}, &cobra.Command{
		Use:   "show FILE",
		Short: "Print the effective config with every default filled in",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return configFailure(cmd, g, args[0], err)
			}
			if g.output == "json" {
				return render(cmd.OutOrStdout(), "json", cfg, nil)
			}
			b, err := cfg.Marshal()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	})
	return c
}

// configFailure prints every config error and exits 1.
func configFailure(cmd *cobra.Command, g *globals, file string, err error) error {
	if g.output == "json" {
		type bad struct {
			File   string          `json:"file"`
			Valid  bool            `json:"valid"`
			Errors []*config.Error `json:"errors"`
			Other  string          `json:"other,omitempty"`
		}
		v := bad{File: file, Errors: config.Errors(err)}
		if len(v.Errors) == 0 {
			v.Other = err.Error()
		}
		if rerr := render(cmd.OutOrStdout(), "json", v, nil); rerr != nil {
			return rerr
		}
		return silentError{exitFailure}
	}
	printConfigErrors(cmd.ErrOrStderr(), err)
	return silentError{exitFailure}
}

func printConfigErrors(w io.Writer, err error) {
	errs := config.Errors(err)
	if len(errs) == 0 {
		fmt.Fprintln(w, "havpn:", err)
		return
	}
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	fmt.Fprintf(w, "%d error(s)\n", len(errs))
}
