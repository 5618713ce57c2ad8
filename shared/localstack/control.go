package localstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/localstack/streams"
)

// Status is what the daemon reports about what it hosts
// (GET /_zael/status on the one endpoint).
type Status struct {
	Name         string              `json:"name"`
	Phase        string              `json:"phase"`
	Endpoint     string              `json:"endpoint"`
	Functions    []FunctionStatus    `json:"functions"`
	Mappings     []MappingStatus     `json:"stream_mappings"`
	Schedules    []ScheduleStatus    `json:"schedules"`
	Destinations []DestinationStatus `json:"destinations"`
	Warnings     []string            `json:"warnings"`
}

// MappingStatus is a stream event source mapping.
type MappingStatus struct {
	Function string `json:"function"`
	Event    string `json:"event"`
	streams.Stats
}

// ScheduleStatus is a schedule.
type ScheduleStatus struct {
	Function   string `json:"function"`
	Event      string `json:"event"`
	Expression string `json:"expression"`
	Fired      int    `json:"fired"`
	Failed     int    `json:"failed"`
	Next       string `json:"next,omitempty"`
}

// DestinationStatus is an on-failure destination: a JSON Lines file, one
// failed batch a line.
type DestinationStatus struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Messages int    `json:"messages"`
}

func (d *daemon) status() Status {
	d.mu.Lock()
	st := Status{Name: d.st.Name, Phase: d.st.Phase, Endpoint: d.st.Endpoint, Warnings: append([]string{}, d.warnings...)}
	urls := make(map[string]string, len(d.st.URLs))
	for k, v := range d.st.URLs {
		urls[k] = v
	}
	mappings, rules := append([]mappingStatus{}, d.mappings...), append([]ruleStatus{}, d.rules...)
	d.mu.Unlock()
	st.Functions = []FunctionStatus{}
	st.Mappings = []MappingStatus{}
	st.Schedules = []ScheduleStatus{}
	st.Destinations = []DestinationStatus{}
	for _, f := range d.sortedFunctions() {
		fs := f.status()
		fs.URL = urls[f.spec.Name]
		st.Functions = append(st.Functions, fs)
	}
	seen := map[string]bool{}
	for _, m := range mappings {
		st.Mappings = append(st.Mappings, MappingStatus{Function: m.fn, Event: m.event, Stats: m.m.Stats()})
		if m.dest != "" && !seen[m.dest] {
			seen[m.dest] = true
			st.Destinations = append(st.Destinations, DestinationStatus{Name: destName(m.dest), File: m.dest, Messages: countLines(m.dest)})
		}
	}
	for _, r := range rules {
		s := r.r.Stats()
		ss := ScheduleStatus{Function: r.fn, Event: r.event, Expression: r.expr, Fired: s.Fired, Failed: s.Failed}
		if !s.Next.IsZero() {
			ss.Next = s.Next.UTC().Format(time.RFC3339)
		}
		st.Schedules = append(st.Schedules, ss)
	}
	return st
}

func destName(file string) string {
	base := file
	for i := len(file) - 1; i >= 0; i-- {
		if file[i] == '/' {
			base = file[i+1:]
			break
		}
	}
	if len(base) > 6 && base[len(base)-6:] == ".jsonl" {
		base = base[:len(base)-6]
	}
	return base
}

func countLines(file string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func (d *daemon) control(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/_zael/health":
		d.mu.Lock()
		phase := d.st.Phase
		d.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": phase == PhaseReady, "phase": phase})
	case "/_zael/status":
		_ = json.NewEncoder(w).Encode(d.status())
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"message":"no such control path %s"}`+"\n", r.URL.Path)
	}
}

// QueryStatus asks the daemon at endpoint what it hosts.
func QueryStatus(ctx context.Context, endpoint string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_zael/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Status{}, fmt.Errorf("%s answered %s: %s", endpoint, resp.Status, b)
	}
	var st Status
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
