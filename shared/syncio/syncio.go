// Package syncio has writers safe for concurrent use: Writer serialises the
// writes of several goroutines (or several processes' output pipes) to one
// io.Writer, and Buffer collects them in memory for reading back.
package syncio

import (
	"bytes"
	"io"
	"sync"
)

// Writer serialises writes to an io.Writer: each Write reaches it whole,
// never interleaved with another.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes p to the underlying writer under the lock.
func (s *Writer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Buffer is a bytes.Buffer that may be written and read concurrently. The
// zero value is an empty buffer ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
