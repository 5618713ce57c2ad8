package lambdarun

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

const apiPrefix = "/2018-06-01/runtime"

// instance is one execution environment: a sequence of processes, one at a
// time, each replacing the last after it exits.
type instance struct {
	r *Runner
	n int

	mu        sync.Mutex
	cur       *process
	firstInit time.Duration
	restarts  int
	stopping  bool
}

// process is one run of the bootstrap with its own Runtime API server.
type process struct {
	in      *instance
	cmd     *exec.Cmd
	ln      net.Listener
	srv     *http.Server
	started time.Time

	ready     chan struct{} // closed on the first /next
	readyOnce sync.Once
	initFail  chan struct{} // closed when an init error is posted
	initOnce  sync.Once
	exited    chan struct{} // closed after cmd.Wait
	exitErr   error

	mu       sync.Mutex
	initDur  time.Duration
	initErr  *FunctionError
	inflight map[string]*invocation
	gone     bool // exited: hand nothing more to it
}

// supervise runs processes until the runner closes or a process fails to
// initialise. The first process's outcome is sent on ready.
func (in *instance) supervise(ready chan<- error) {
	defer in.r.wg.Done()
	first := true
	report := func(err error) {
		if first {
			ready <- err
			first = false
		}
	}
	for {
		p, err := in.spawn()
		if err != nil {
			report(err)
			in.r.instanceDied(err)
			return
		}
		initTimer := time.NewTimer(in.r.o.InitTimeout)
		var initErr *InitError
		select {
		case <-p.ready:
		case <-p.initFail:
			p.kill()
			<-p.exited
			initErr = &InitError{Instance: in.n, Err: p.postedInitError(), Exit: p.exitErr}
		case <-p.exited:
			initErr = &InitError{Instance: in.n, Err: p.postedInitError(), Exit: p.exitErr}
		case <-initTimer.C:
			p.kill()
			<-p.exited
			initErr = &InitError{Instance: in.n, Err: p.postedInitError(), TimedOut: true}
		case <-in.r.closed:
			p.stop()
		}
		initTimer.Stop()
		if initErr != nil {
			p.finish()
			if !in.r.isClosed() {
				if !first {
					fmt.Fprintf(in.r.out, "lambdarun: %v\n", initErr)
				}
				report(initErr)
				in.r.instanceDied(initErr)
			}
			return
		}
		if in.r.isClosed() {
			<-p.exited
			p.finish()
			return
		}
		if first {
			p.mu.Lock()
			d := p.initDur
			p.mu.Unlock()
			in.mu.Lock()
			in.firstInit = d
			in.mu.Unlock()
			report(nil)
		}

		<-p.exited
		p.finish()
		if in.r.isClosed() {
			return
		}
		fmt.Fprintf(in.r.out, "lambdarun: %s instance %d exited (%v); starting a new one\n", in.r.name, in.n, exitText(p.exitErr))
		in.mu.Lock()
		in.restarts++
		in.mu.Unlock()
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// spawn starts a process with a fresh Runtime API endpoint.
func (in *instance) spawn() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdarun: listen: %w", err)
	}
	p := &process{
		in:       in,
		ln:       ln,
		ready:    make(chan struct{}),
		initFail: make(chan struct{}),
		exited:   make(chan struct{}),
		inflight: map[string]*invocation{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", p.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", p.response)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", p.invokeError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", p.initError)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()

	cmd := exec.Command(in.r.bin)
	cmd.Dir = in.r.dir
	cmd.Env = in.r.environ(ln.Addr().String())
	cmd.Stdout = in.r.out
	cmd.Stderr = in.r.out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = stopGrace
	p.cmd = cmd

	in.mu.Lock()
	if in.stopping {
		in.mu.Unlock()
		_ = p.srv.Close()
		return nil, ErrClosed
	}
	p.mu.Lock() // the runtime's first request reads it from another goroutine
	p.started = time.Now()
	p.mu.Unlock()
	err = cmd.Start()
	if err == nil {
		in.cur = p
	}
	in.mu.Unlock()
	if err != nil {
		_ = p.srv.Close()
		return nil, fmt.Errorf("lambdarun: start %s: %w", in.r.bin, err)
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop ends the instance's current process for Close.
func (in *instance) stop() {
	in.mu.Lock()
	in.stopping = true
	p := in.cur
	in.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// stop asks the process to exit, then kills it after a grace period.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = signalProcess(p.cmd.Process, false)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		p.kill()
	}
}

func (p *process) kill() { _ = signalProcess(p.cmd.Process, true) }

// finish runs after the process exited: it fails what it was running and
// closes its endpoint.
func (p *process) finish() {
	p.mu.Lock()
	p.gone = true
	var pending []*invocation
	for id, inv := range p.inflight {
		pending = append(pending, inv)
		delete(p.inflight, id)
	}
	p.mu.Unlock()
	for _, inv := range pending {
		msg := fmt.Sprintf("RequestId: %s Error: Runtime exited: %s", inv.id, exitText(p.exitErr))
		inv.complete(Result{Err: &FunctionError{Type: "Runtime.ExitError", Message: msg}, Payload: errorPayload("Runtime.ExitError", msg)})
	}
	_ = p.srv.Close()
}

func (p *process) postedInitError() *FunctionError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.initErr
}

// next hands the runtime the next invocation, waiting for one.
func (p *process) next(w http.ResponseWriter, req *http.Request) {
	p.readyOnce.Do(func() {
		p.mu.Lock()
		p.initDur = time.Since(p.started)
		p.mu.Unlock()
		close(p.ready)
	})
	r := p.in.r
	var inv *invocation
	select {
	case inv = <-r.queue:
	case <-req.Context().Done():
		return
	case <-r.closed:
		// Hold the request until the process is stopped, so the runtime
		// does not log a failed /next on its way out.
		<-req.Context().Done()
		return
	}

	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		r.requeue(inv)
		return
	}
	inv.start = time.Now()
	inv.inst = p.in.n
	p.inflight[inv.id] = inv
	deadline := inv.start.Add(r.o.Timeout)
	inv.timer = time.AfterFunc(r.o.Timeout, func() { p.timeout(inv) })
	p.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", r.o.Region, AccountID, r.name))
	h.Set("Lambda-Runtime-Trace-Id", inv.trace)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(inv.payload); err != nil {
		// The runtime never got it: run it elsewhere.
		p.mu.Lock()
		_, mine := p.inflight[inv.id]
		delete(p.inflight, inv.id)
		p.mu.Unlock()
		if mine {
			inv.timer.Stop()
			inv.start = time.Time{}
			r.requeue(inv)
		}
	}
}

// take removes a running invocation from the process.
func (p *process) take(id string) *invocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	inv := p.inflight[id]
	delete(p.inflight, id)
	return inv
}

// timeout fails an invocation that ran too long and kills its process, as
// Lambda does.
func (p *process) timeout(inv *invocation) {
	if p.take(inv.id) == nil {
		return
	}
	r := p.in.r
	msg := fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, r.o.Timeout.Seconds())
	inv.complete(Result{Err: &FunctionError{Type: "Sandbox.Timedout", Message: msg}, Payload: errorPayload("Sandbox.Timedout", msg)})
	p.kill()
}

func (p *process) response(w http.ResponseWriter, req *http.Request) {
	inv := p.take(req.PathValue("id"))
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no running invocation "+req.PathValue("id"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxPayload+1))
	switch {
	case err != nil:
		msg := "reading the response: " + err.Error()
		inv.complete(Result{Err: &FunctionError{Type: "Runtime.ResponseError", Message: msg}, Payload: errorPayload("Runtime.ResponseError", msg)})
	case len(body) > MaxPayload:
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayload)
		inv.complete(Result{Err: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: msg}, Payload: errorPayload("Function.ResponseSizeTooLarge", msg)})
	case req.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "":
		// A streamed response that failed part way (aws-lambda-go sends the
		// error in trailers).
		fe := &FunctionError{Type: req.Trailer.Get("Lambda-Runtime-Function-Error-Type")}
		raw, _ := base64.StdEncoding.DecodeString(req.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		_ = json.Unmarshal(raw, fe)
		inv.complete(Result{Err: fe, Payload: raw})
	default:
		inv.complete(Result{Payload: body})
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func (p *process) invokeError(w http.ResponseWriter, req *http.Request) {
	inv := p.take(req.PathValue("id"))
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no running invocation "+req.PathValue("id"))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, MaxPayload))
	inv.complete(Result{Err: parseError(body, req.Header), Payload: body})
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func (p *process) initError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, MaxPayload))
	p.mu.Lock()
	p.initErr = parseError(body, req.Header)
	p.mu.Unlock()
	p.initOnce.Do(func() { close(p.initFail) })
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// parseError reads an error posted by the runtime.
func parseError(body []byte, h http.Header) *FunctionError {
	fe := &FunctionError{}
	if err := json.Unmarshal(body, fe); err != nil {
		fe.Message = string(body)
	}
	if fe.Type == "" {
		fe.Type = h.Get("Lambda-Runtime-Function-Error-Type")
	}
	if fe.Type == "" {
		fe.Type = "Unhandled"
	}
	return fe
}

func errorPayload(typ, msg string) []byte {
	b, _ := json.Marshal(FunctionError{Type: typ, Message: msg})
	return b
}

func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(errorPayload(typ, msg))
}
