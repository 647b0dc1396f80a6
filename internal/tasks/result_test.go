package tasks

import (
	"context"
	"errors"
	"testing"
	"time"
)

// flakyWriter fails its first n writes.
type flakyWriter struct {
	fail  int
	calls int
	got   []byte
}

func (f *flakyWriter) Write(b []byte) (int, error) {
	f.calls++
	if f.calls <= f.fail {
		return 0, errors.New("connection refused")
	}
	f.got = append([]byte(nil), b...)
	return len(b), nil
}

func TestPatientWriterOutlastsABlip(t *testing.T) {
	t.Parallel()
	f := &flakyWriter{fail: 3}
	w := &patientWriter{ctx: context.Background(), w: f, window: time.Minute}
	if n, err := w.Write([]byte("done")); err != nil || n != 4 || string(f.got) != "done" {
		t.Fatalf("Write = %d, %v (wrote %q after %d calls); want the result written", n, err, f.got, f.calls)
	}
	if f.calls != 4 {
		t.Errorf("%d calls, want 4", f.calls)
	}
}

func TestPatientWriterGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("window", func(t *testing.T) {
		t.Parallel()
		f := &flakyWriter{fail: 1 << 30}
		w := &patientWriter{ctx: context.Background(), w: f, window: 0}
		if _, err := w.Write([]byte("x")); err == nil || f.calls != 1 {
			t.Errorf("err %v after %d calls; want the error after one call", err, f.calls)
		}
	})
	t.Run("context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := &flakyWriter{fail: 1 << 30}
		w := &patientWriter{ctx: ctx, w: f, window: time.Hour}
		if _, err := w.Write([]byte("x")); err == nil || f.calls != 1 {
			t.Errorf("err %v after %d calls; want the error after one call", err, f.calls)
		}
	})
}
