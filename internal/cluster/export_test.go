package cluster

// CrashOnStop makes Run end like a crash: no leaving heartbeat (tests of
// dead-peer detection).
func (c *Cluster) CrashOnStop() {
	c.noGoodbye.Store(true)
}
