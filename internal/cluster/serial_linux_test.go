//go:build linux

package cluster

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestSerialPacing: at 9600 baud a 94-byte frame needs ~98 ms on the line;
// a second heartbeat offered before that is skipped, a later one is sent.
func TestSerialPacing(t *testing.T) {
	master, slave := openPTY(t)
	l, err := openSerial(slave, 9600, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := NewCodec(testKey)
	m := sampleMessage()
	b, _ := c.Marshal(nil, &m)
	if err := l.Send(b); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(b); !errors.Is(err, errSkipped) {
		t.Fatalf("second send at once: %v, want errSkipped", err)
	}
	time.Sleep(time.Duration(len(b)+frameHeaderLen) * 10 * time.Second / 9600)
	if err := l.Send(b); err != nil {
		t.Fatalf("send after the frame time: %v", err)
	}
	buf := make([]byte, 4*MaxFrameLen)
	time.Sleep(10 * time.Millisecond)
	n, _ := master.Read(buf)
	if n != 2*(len(b)+frameHeaderLen) {
		t.Fatalf("master read %d bytes, want two frames (%d)", n, 2*(len(b)+frameHeaderLen))
	}
}

// TestSerialCountsForgedFrames: a frame signed with another key is skipped
// by the deframer and reported as an auth drop; the good frame after it
// is delivered.
func TestSerialCountsForgedFrames(t *testing.T) {
	master, slave := openPTY(t)
	l, err := openSerial(slave, 115200, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var auth atomic.Int32
	l.setDropFunc(func(r DropReason) {
		if r == DropAuth {
			auth.Add(1)
		}
	})
	m := sampleMessage()
	forged, _ := NewCodec([]byte("some other key, long enough")).Marshal(nil, &m)
	good, _ := NewCodec(testKey).Marshal(nil, &m)
	if _, err := master.Write(append(AppendFrame(nil, forged), AppendFrame(nil, good)...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxMessageLen+1)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		n, _, ok, err := l.recvNonblock(buf)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if n != len(good) || auth.Load() != 1 {
				t.Fatalf("got %d bytes, %d auth drops", n, auth.Load())
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("good frame not received")
}
