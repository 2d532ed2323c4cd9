// Package testenv gives integration tests the real services they need: a
// Mosquitto broker and an InfluxDB 1.8 server (with Flux, so the v2 client API
// works), each started once per test binary on a free loopback port in a
// temporary directory and stopped when the binary exits.
//
// A test calls Mosquitto(t) or InfluxDB(t); the package's TestMain must call
// Run so the servers are stopped. If a server binary is missing the test fails
// with a message that says how to install it: integration tests never skip.
// Set CRAMPWATCH_TEST_MQTT_URL or CRAMPWATCH_TEST_INFLUX_URL to use servers
// that are already running instead.
package testenv

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crampwatch/crampwatch/internal/localserver"
)

// env holds the servers this test binary started. It is per process by
// nature: a test binary is one process and its servers live exactly as long.
type env struct {
	mu       sync.Mutex
	mqtt     *localserver.Server
	mqttErr  error
	influx   *localserver.Server
	influxEr error
	dbSeq    atomic.Int64
}

var procEnv env

// Run runs the tests and then stops every server this binary started.
// Use it from TestMain: func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }.
func Run(m *testing.M) int {
	code := m.Run()
	procEnv.mu.Lock()
	defer procEnv.mu.Unlock()
	for _, s := range []*localserver.Server{procEnv.mqtt, procEnv.influx} {
		if s != nil {
			s.Stop()
		}
	}
	return code
}

// Mosquitto returns the URL (tcp://127.0.0.1:port) of a running Mosquitto
// broker, starting one for this test binary on first use.
func Mosquitto(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("CRAMPWATCH_TEST_MQTT_URL"); u != "" {
		return u
	}
	procEnv.mu.Lock()
	defer procEnv.mu.Unlock()
	if procEnv.mqtt == nil && procEnv.mqttErr == nil {
		procEnv.mqtt, procEnv.mqttErr = StartMosquitto(MosquittoOptions{})
	}
	if procEnv.mqttErr != nil {
		t.Fatalf("testenv: real Mosquitto is required: %v", procEnv.mqttErr)
	}
	return procEnv.mqtt.URL
}

// Influx describes one fresh database on the test InfluxDB server.
type Influx struct {
	URL      string // http://127.0.0.1:port
	Token    string // empty: the test server has no authentication
	Org      string // ignored by InfluxDB 1.8
	Bucket   string // "<database>/autogen"
	Database string
}

// InfluxDB returns a fresh, empty database on a running InfluxDB server,
// starting one for this test binary on first use.
func InfluxDB(t testing.TB) Influx {
	t.Helper()
	base := os.Getenv("CRAMPWATCH_TEST_INFLUX_URL")
	if base == "" {
		procEnv.mu.Lock()
		if procEnv.influx == nil && procEnv.influxEr == nil {
			procEnv.influx, procEnv.influxEr = StartInfluxDB()
		}
		s, err := procEnv.influx, procEnv.influxEr
		procEnv.mu.Unlock()
		if err != nil {
			t.Fatalf("testenv: real InfluxDB is required: %v", err)
		}
		base = s.URL
	}
	db := fmt.Sprintf("t_%s_%d_%d", sanitize(t.Name()), os.Getpid(), procEnv.dbSeq.Add(1))
	if err := InfluxQL(context.Background(), base, "", "CREATE DATABASE "+db); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	return Influx{URL: base, Bucket: db + "/autogen", Database: db}
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func sanitize(name string) string {
	s := nonWord.ReplaceAllString(name, "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToLower(s)
}

// The servers themselves are started by package localserver; these names
// let tests that need a server of their own (restarts, TLS) keep to testenv.
type (
	// MosquittoOptions configures a broker started by StartMosquitto.
	MosquittoOptions = localserver.MosquittoOptions
	// MosquittoServer is a broker started by StartMosquitto.
	MosquittoServer = localserver.MosquittoServer
	// InfluxServer is a server started by StartInfluxDB.
	InfluxServer = localserver.InfluxServer
)

// StartMosquitto starts a dedicated Mosquitto broker (localserver.StartMosquitto).
func StartMosquitto(opt MosquittoOptions) (*MosquittoServer, error) {
	return localserver.StartMosquitto(opt)
}

// StartInfluxDB starts a dedicated InfluxDB server (localserver.StartInfluxDB).
func StartInfluxDB() (*InfluxServer, error) { return localserver.StartInfluxDB() }

// InfluxQL runs one InfluxQL statement (localserver.InfluxQL).
func InfluxQL(ctx context.Context, base, db, q string) error {
	return localserver.InfluxQL(ctx, base, db, q)
}

// InfluxQLQuery runs an InfluxQL statement and returns the raw JSON response.
func InfluxQLQuery(ctx context.Context, base, db, q string) ([]byte, error) {
	return localserver.InfluxQLQuery(ctx, base, db, q)
}

// FreePort returns a free TCP port on the loopback interface.
func FreePort() (int, error) { return localserver.FreePort() }
