package localstack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LogFile is one log of a stack.
type LogFile struct {
	Name string
	Path string
}

// LogFiles lists the logs `local logs` shows: one function's (or one
// part's: daemon, dynamodb, s3), or with name "" every function's.
func LogFiles(dir, name string) ([]LogFile, error) {
	p := Paths{dir}
	switch name {
	case "daemon":
		return []LogFile{{name, p.DaemonLog()}}, nil
	case "dynamodb":
		return []LogFile{{name, p.DynamoDBLog()}}, nil
	case "s3":
		return []LogFile{{name, p.S3Log()}}, nil
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "functions", "*.log"))
	sort.Strings(matches)
	var out []LogFile
	var names []string
	for _, m := range matches {
		fn := strings.TrimSuffix(filepath.Base(m), ".log")
		names = append(names, fn)
		if name == "" || name == fn {
			out = append(out, LogFile{fn, m})
		}
	}
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("no log for %q: the stack's functions are %s (or daemon, dynamodb, s3)", name, strings.Join(names, ", "))
	}
	return out, nil
}

// ShowLogs prints the logs (prefixed by their name when prefix), then with
// follow keeps printing what is appended until ctx ends.
func ShowLogs(ctx context.Context, files []LogFile, prefix, follow bool, w io.Writer) error {
	readers := make([]*bufio.Reader, len(files))
	for i, f := range files {
		fh, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("log of %s: %w", f.Name, err)
		}
		defer fh.Close()
		readers[i] = bufio.NewReader(fh)
	}
	partial := make([]string, len(files))
	drain := func() error {
		for i, r := range readers {
			for {
				line, err := r.ReadString('\n')
				if err == io.EOF {
					partial[i] += line // a line being written: finish it next time
					break
				}
				if err != nil {
					return err
				}
				line = partial[i] + line
				partial[i] = ""
				if prefix {
					line = "[" + files[i].Name + "] " + line
				}
				if _, err := io.WriteString(w, line); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := drain(); err != nil || !follow {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := drain(); err != nil {
				return err
			}
		}
	}
}
