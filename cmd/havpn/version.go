package main

import (
	"runtime"

	"github.com/havpn/havpn/internal/buildinfo"
	"github.com/spf13/cobra"
)

type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the havpn version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{buildinfo.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH}
			return render(cmd.OutOrStdout(), g.output, v, func(t *table) {
				t.row("havpn", v.Version)
				t.row("go", v.Go)
				t.row("platform", v.OS+"/"+v.Arch)
			})
		},
	}
}
