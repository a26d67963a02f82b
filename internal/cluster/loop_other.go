//go:build !linux

package cluster

import "context"

func (c *Cluster) canPoll(links []Link) bool { return false }

func (c *Cluster) pollLoop(ctx context.Context, links []Link) error { panic("unreachable") }
