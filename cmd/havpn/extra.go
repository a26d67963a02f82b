package main

import "github.com/spf13/cobra"

// addExtraCmds adds the commands that live in their own files.
func addExtraCmds(root *cobra.Command, g *globals) {
	root.AddCommand(newLabCmd(g))
}
