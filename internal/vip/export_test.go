package vip

// StopRefreshForTest ends the current hold's goroutines without deleting the
// address, as SIGKILL would, so that tests can watch the kernel expire it.
func (v *VIP) StopRefreshForTest() {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if v.stop != nil {
		close(v.stop)
		v.wg.Wait()
		v.stop = nil
	}
}
