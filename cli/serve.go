package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Environment variables of serve.
const (
	leaseKeysEnv = "ZAEL_LEASE_KEYS" // comma-separated; the first signs
	apiTokenEnv  = "ZAEL_API_TOKEN"
)

const (
	minLeaseKeyLen  = 16
	maxLeaseTTL     = 7 * 24 * time.Hour
	shutdownTimeout = 10 * time.Second
)

type serveOptions struct {
	env       *Env
	Addr      string
	Token     string
	LeaseKeys [][]byte
	LeaseTTL  time.Duration
	LogLevel  slog.Level
	// ConfigCacheTTL is how long the limits configuration, entities and
	// namespaces are cached (0: not at all).
	ConfigCacheTTL time.Duration
	// Timeout bounds each request (namespace and config reads included).
	Timeout time.Duration
	// NoDenialCache turns the limiter's denial cache off.
	NoDenialCache bool
}

func newCmdServe(env *Env, runF func(*serveOptions) error) *cobra.Command {
	opts := &serveOptions{env: env}
	var keys []string
	level := logLevel{&opts.LogLevel}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the acquire HTTP API locally (the acquire function's handler)",
		Long: `Serve the acquire HTTP API (POST /v1/acquire, /v1/leases/adjust, /v1/leases/release,
GET /v1/available, /healthz) with the same handler as the acquire Lambda, against the table named
by --name. Requests without a namespace use --namespace. The listening URL is printed on stdout
(use --addr 127.0.0.1:0 for a free port); logs go to stderr as JSON. Stops cleanly on Ctrl-C or
SIGTERM, letting requests in flight finish.

No authentication unless --token (or ` + apiTokenEnv + `) is given: then every route but /healthz
needs "Authorization: Bearer <token>". Lease tokens are signed with the first --lease-key (or the
first key of ` + leaseKeysEnv + `, comma-separated) and verified with any of them, so keys can be
rotated; without one a random key is used and leases do not survive a restart.

Limits, entities and namespaces read from the table are cached for --config-cache-ttl (60s by default):
a change made elsewhere (another process, the CLI) reaches this server within that time.`,
		Example: `  zae-limiter serve --endpoint-url http://localhost:8000
  zae-limiter serve --addr 127.0.0.1:0 --token s3cret --lease-key "$(openssl rand -hex 32)"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateAddr(opts.Addr); err != nil {
				return err
			}
			if !cmd.Flags().Changed("token") {
				opts.Token = env.Getenv(apiTokenEnv)
			}
			if !cmd.Flags().Changed("lease-key") {
				keys = nil
				for _, k := range strings.Split(env.Getenv(leaseKeysEnv), ",") {
					if k = strings.TrimSpace(k); k != "" {
						keys = append(keys, k)
					}
				}
			}
			opts.LeaseKeys = nil
			for i, k := range keys {
				if len(k) < minLeaseKeyLen {
					// Never echo a secret.
					return limits.Invalid("lease-key", fmt.Sprintf("#%d (hidden)", i+1),
						fmt.Sprintf("must be at least %d bytes (e.g. openssl rand -hex 32)", minLeaseKeyLen))
				}
				opts.LeaseKeys = append(opts.LeaseKeys, []byte(k))
			}
			if opts.LeaseTTL <= 0 || opts.LeaseTTL > maxLeaseTTL {
				return limits.Invalid("lease-ttl", opts.LeaseTTL.String(), "must be positive and at most 168h")
			}
			if opts.ConfigCacheTTL < 0 || opts.ConfigCacheTTL > store.MaxCacheTTL {
				return limits.Invalid("config-cache-ttl", opts.ConfigCacheTTL.String(), "must be between 0 (no cache) and 1h")
			}
			if opts.Timeout < 100*time.Millisecond || opts.Timeout > time.Minute {
				return limits.Invalid("timeout", opts.Timeout.String(), "must be between 100ms and 1m")
			}
			if runF != nil {
				return runF(opts)
			}
			return serveRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (e.g. --addr 0.0.0.0:8080; port 0 picks a free one)")
	f.StringVar(&opts.Token, "token", "", "bearer `TOKEN` required on every route but /healthz (e.g. --token s3cret; env "+apiTokenEnv+")")
	f.StringArrayVar(&keys, "lease-key", nil, "`KEY` signing lease tokens (at least 16 bytes), repeatable: the first signs, all verify (e.g. --lease-key \"$(openssl rand -hex 32)\"; env "+leaseKeysEnv+", comma-separated; default: random)")
	f.DurationVar(&opts.LeaseTTL, "lease-ttl", api.DefaultLeaseTTL, "how long a lease token is valid, `D` (e.g. --lease-ttl 1h)")
	f.DurationVar(&opts.ConfigCacheTTL, "config-cache-ttl", store.DefaultCacheTTL, "how long limits, entities and namespaces read from the table are cached, `D`: a limit change reaches this server within it; 0 reads them on every request (e.g. --config-cache-ttl 10s)")
	f.DurationVar(&opts.Timeout, "timeout", limiter.DefaultTimeout, "the most one request may take, `D`, DynamoDB retries and config reads included: past it the answer is 503 (or, for an acquire, what on_unavailable decides) (e.g. --timeout 2s)")
	f.BoolVar(&opts.NoDenialCache, "no-denial-cache", false, "write every denial to DynamoDB (by default a request the bucket was seen unable to take is denied without a request until refill makes it fit; e.g. --no-denial-cache)")
	f.Var(level, "log-level", "`LEVEL` of the JSON logs on stderr: debug (every request), info, warn or error (e.g. --log-level debug)")
	return cmd
}

func validateAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return limits.Invalid("addr", addr, "want HOST:PORT, e.g. 127.0.0.1:8080")
	}
	return nil
}

// logLevel is the --log-level flag (a bad value is a usage error).
type logLevel struct{ l *slog.Level }

func (v logLevel) String() string {
	if v.l == nil {
		return "info"
	}
	return strings.ToLower(v.l.String())
}

func (v logLevel) Set(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	*v.l = l
	return nil
}

func (v logLevel) Type() string { return "level" }

func serveRun(ctx context.Context, opts *serveOptions) error {
	env := opts.env
	log := slog.New(slog.NewJSONHandler(env.Err, &slog.HandlerOptions{Level: opts.LogLevel}))
	env.CacheTTL = store.CacheTTLSetting(opts.ConfigCacheTTL)
	st, err := env.Store(ctx)
	if err != nil {
		return err
	}
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return err
	}
	// Fail fast on a missing table; an unregistered namespace only answers
	// 404 until it is registered, and a DynamoDB out of reach 503 until it
	// answers (as the Lambda does).
	switch _, err := st.Namespace(ctx, env.Namespace); {
	case errors.Is(err, limits.ErrNotFound):
		log.Warn("namespace not registered: requests to it answer 404 until 'zae-limiter namespace register "+env.Namespace+"'",
			"namespace", env.Namespace)
	case err != nil && isUnreachable(err):
		log.Warn("DynamoDB does not answer: requests answer 503 until it does", "endpoint", env.endpoint(), "cause", err.Error())
	case err != nil:
		return env.tableErr(err)
	}
	keys := opts.LeaseKeys
	if len(keys) == 0 {
		keys = [][]byte{api.RandomKey()}
		log.Info("no lease key configured: using a random one; lease tokens do not survive a restart")
	}
	h := api.New(api.Options{
		Store: st, DB: db, Table: env.Name, DefaultNamespace: env.Namespace,
		Keys: keys, LeaseTTL: opts.LeaseTTL, Token: opts.Token, Logger: log, Timeout: opts.Timeout,
		Limiter: limiter.Options{NoDenialCache: opts.NoDenialCache},
	})
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	url := listenURL(ln.Addr())
	if _, err := fmt.Fprintln(env.Out, url); err != nil {
		_ = ln.Close()
		return err
	}
	log.Info("listening", "url", url, "table", env.Name, "namespace", env.Namespace,
		"auth", opts.Token != "", "lease_keys", len(keys), "lease_ttl", opts.LeaseTTL.String(),
		"config_cache_ttl", opts.ConfigCacheTTL.String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", url, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// listenURL is the URL to reach a listener; an unspecified host (":8080",
// "0.0.0.0") is shown as 127.0.0.1.
func listenURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
