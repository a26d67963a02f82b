package daemon

import (
	"context"
	"fmt"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells the service manager about state changes (sd_notify).
type Notifier interface {
	Notify(state string) error
	// WatchdogInterval returns the interval the manager expects pings at,
	// or 0 when there is no watchdog.
	WatchdogInterval() time.Duration
}

// systemdNotifier talks to systemd through $NOTIFY_SOCKET; without it every
// call is a no-op.
type systemdNotifier struct{}

func (systemdNotifier) Notify(state string) error {
	_, err := sd.SdNotify(false, state)
	return err
}

func (systemdNotifier) WatchdogInterval() time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

func (d *Daemon) notifyf(format string, args ...any) {
	if err := d.notify.Notify(fmt.Sprintf(format, args...)); err != nil {
		d.log.Warn("telling the service manager our state", "err", err)
	}
}

// watchdog pings the service manager at half its interval. The ping comes
// from the same loop that would hang if the daemon wedged, which is the
// point of a watchdog.
func (d *Daemon) watchdog(ctx context.Context) error {
	iv := d.notify.WatchdogInterval()
	if iv <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.notifyf("WATCHDOG=1")
		}
	}
}
