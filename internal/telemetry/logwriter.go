package telemetry

import (
	"io"
	"sync"
)

// maxLogBuffer bounds what a LogWriter holds: past it, writers wait for
// the flush, so a stalled output slows logging down instead of growing
// memory or dropping lines.
const maxLogBuffer = 1 << 20

// LogWriter writes log lines to out from one goroutine, each write taking
// everything gathered since the previous one (group commit). A handler's
// Write is a copy into memory; under load many lines share one write
// system call (the app writes one audit line per submission), and with
// little traffic each line is written at once, the goroutine being idle.
// Order is kept. Close writes what is left; a crash can lose the lines of
// the last instant, written by nobody yet.
type LogWriter struct {
	out  io.Writer
	wake chan struct{}
	done chan struct{}

	mu     sync.Mutex
	space  *sync.Cond // the buffer was taken by the flusher
	buf    []byte
	closed bool
}

// NewLogWriter starts the goroutine writing to out; Close stops it.
func NewLogWriter(out io.Writer) *LogWriter {
	w := &LogWriter{out: out, wake: make(chan struct{}, 1), done: make(chan struct{}), buf: make([]byte, 0, 16<<10)}
	w.space = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write copies p for the writing goroutine; after Close it writes p itself.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) >= maxLogBuffer && !w.closed {
		w.space.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after what was buffered
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken: it will take this line too
	}
	return len(p), nil
}

func (w *LogWriter) run() {
	defer close(w.done)
	spare := make([]byte, 0, 16<<10)
	for {
		<-w.wake
		for {
			w.mu.Lock()
			if len(w.buf) == 0 {
				closed := w.closed
				w.mu.Unlock()
				if closed {
					return
				}
				break
			}
			out := w.buf
			w.buf = spare[:0]
			w.space.Broadcast()
			w.mu.Unlock()
			_, _ = w.out.Write(out)
			if cap(out) > 256<<10 {
				out = make([]byte, 0, 16<<10) // do not keep a burst's buffer
			}
			spare = out
		}
	}
}

// Close writes what is buffered and stops the goroutine. Later writes go
// straight to out.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}
