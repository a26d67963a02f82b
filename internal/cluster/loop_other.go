//go:build !linux

package cluster

import "context"

func (c *Cluster) canPoll(links []Link) bool { return false }

func (c *Cluster) pollLoop(ctx context.Context, links []Link) error { panic("unreachable") }

func isGone(err error) bool { return false }

func currentNetns() int { return -1 }

func (c *Cluster) reopenLoop(ctx context.Context, nsfd int) {}
