package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

// BenchmarkPartitionDispatch measures what per-device subscriptions cost
// the subscriber: Paho dispatches each message by matching its topic
// against every route in a list, and mqttclient makes one route per
// subscription filter, so an instance subscribed to {prefix}/{device}/{stream}
// for 500 devices matches each message against 1500 routes, where the
// wildcard subscriptions of an unpartitioned instance need 3. One op is one
// message through a real Mosquitto (QoS 0, small payload, the publisher in
// the same process); cpu-us/msg is the process's CPU per message, so the
// difference between the cases is the dispatch cost. The per-device cases
// are slow; run them with a fixed count:
//
//	go test -run '^$' -bench PartitionDispatch -benchtime 20000x ./cmd/crampwatch/
func BenchmarkPartitionDispatch(b *testing.B) {
	for _, devices := range []int{0, 100, 500} {
		name := "wildcard"
		if devices > 0 {
			name = fmt.Sprintf("per-device-%d", devices)
		}
		b.Run(name, func(b *testing.B) { benchDispatch(b, devices) })
	}
}

func benchDispatch(b *testing.B, devices int) {
	url := testenv.Mosquitto(b)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	ids := make([]string, max(devices, 500))
	for i := range ids {
		ids[i] = fmt.Sprintf("dispatch-%04d", i)
	}
	var p partitioning
	if devices > 0 {
		p = partitioning{count: 1, devices: ids[:devices]}
	}
	var got atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	want := int64(b.N)
	count := func(string, []byte) {
		if got.Add(1) == want {
			once.Do(func() { close(done) })
		}
	}
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
	subs := p.subscriptions(prefix, "", streamHandler{wire.StreamEMG, count}, streamHandler{wire.StreamIMU, count}, streamHandler{wire.StreamStatus, count})
	sub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: prefix + "-sub", CleanSession: true}, log, subs...)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close(time.Second)
	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: prefix + "-pub", CleanSession: true}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(time.Second)
	// Messages go to subscribed devices only: 500 of them for wildcards.
	n := len(ids)
	if devices > 0 {
		n = devices
	}
	topics := make([]string, n)
	for i := range topics {
		topics[i] = wire.Topic(prefix, ids[i], wire.StreamEMG)
	}
	payload := []byte("0123456789")
	cpu0 := benchCPU()
	b.ResetTimer()
	for i := range b.N {
		if err := pub.Publish(ctx, topics[i%n], 0, false, payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute + time.Duration(b.N)*time.Millisecond):
		b.Fatalf("received %d of %d messages", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64((benchCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
}
