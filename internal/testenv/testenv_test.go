package testenv

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestMosquittoAcceptsConnections(t *testing.T) {
	u := Mosquitto(t)
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "tcp://"), time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.Close()
}

func TestInfluxDBFreshDatabases(t *testing.T) {
	a, b := InfluxDB(t), InfluxDB(t)
	if a.Database == b.Database {
		t.Fatalf("two calls gave the same database %q", a.Database)
	}
	body, err := InfluxQLQuery(context.Background(), a.URL, "", "SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{a.Database, b.Database} {
		if !strings.Contains(string(body), db) {
			t.Errorf("SHOW DATABASES lacks %s: %s", db, body)
		}
	}
}
