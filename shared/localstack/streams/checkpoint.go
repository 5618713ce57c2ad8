package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// checkpoints remember, per shard of the current stream, the last sequence
// number done and which shards are read to their end. With a file they
// survive a restart (written atomically after each change).
type checkpoints struct {
	mu   sync.Mutex
	file string
	data cpData
}

type cpData struct {
	Stream   string            `json:"stream_arn"`
	Seq      map[string]string `json:"sequence_numbers"`
	Finished map[string]bool   `json:"finished_shards"`
}

func loadCheckpoints(file string) (*checkpoints, error) {
	c := &checkpoints{file: file, data: cpData{Seq: map[string]string{}, Finished: map[string]bool{}}}
	if file == "" {
		return c, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("streams: checkpoints: %w", err)
	}
	if err := json.Unmarshal(b, &c.data); err != nil {
		return nil, fmt.Errorf("streams: checkpoints %s: %w", file, err)
	}
	if c.data.Seq == nil {
		c.data.Seq = map[string]string{}
	}
	if c.data.Finished == nil {
		c.data.Finished = map[string]bool{}
	}
	return c, nil
}

func (c *checkpoints) stream() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.Stream
}

// setStream starts over when the stream changed.
func (c *checkpoints) setStream(arn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data.Stream == arn {
		return
	}
	c.data = cpData{Stream: arn, Seq: map[string]string{}, Finished: map[string]bool{}}
	c.save()
}

func (c *checkpoints) seq(shard string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.Seq[shard]
}

func (c *checkpoints) done(shard string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.Finished[shard]
}

func (c *checkpoints) set(shard, seq string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq == "" || c.data.Seq[shard] == seq {
		return
	}
	c.data.Seq[shard] = seq
	c.save()
}

func (c *checkpoints) finish(shard string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data.Finished[shard] = true
	c.save()
}

// save writes the file (caller holds mu); a failure only costs redelivery
// after a restart, so it is not fatal.
func (c *checkpoints) save() {
	if c.file == "" {
		return
	}
	b, _ := json.Marshal(c.data)
	_ = os.MkdirAll(filepath.Dir(c.file), 0o755)
	tmp := c.file + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, c.file)
	}
}
