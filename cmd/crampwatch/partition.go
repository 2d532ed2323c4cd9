package main

// Fixed broker-side partitioning: how several "serve" instances split the
// devices between them on a broker whose shared subscriptions are not
// sticky per device (Mosquitto hands each message of a shared subscription
// to any member, so a device's frames would be scattered over instances and
// its stateful detector would see a fraction of them).
//
// Devices map to a fixed number of partitions by a stable hash of their id;
// each instance is configured with the partitions it owns and the device
// registry, and subscribes to {prefix}/{device}/{stream} for exactly its own
// devices. The broker then routes every device's messages to the one
// instance that subscribed to them, and keeps them in that instance's
// persistent session while it restarts. Which instance owns which partition
// is configuration, never negotiated at run time: there is no coordinator.
// docs/scaling.md describes the production alternative (EMQX shared
// subscriptions with the hash_clientid strategy), which needs no registry.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

// maxPartitions bounds --partitions: more partitions than this only make
// the configuration longer, never the split finer in a useful way.
const maxPartitions = 4096

// partitioning is the partition configuration of one instance. The zero
// value is off: the instance subscribes to every device.
type partitioning struct {
	count       int    // --partitions: fixed number of partitions; 0: off
	spec        string // --partition: the partitions this instance owns, e.g. "0-7,12"
	devicesFile string // --devices-file: the device registry, one id per line

	owned   []bool   // owned[p] reports whether partition p is this instance's
	devices []string // this instance's devices from the registry, sorted
}

// register defines the partitioning flags on fs.
func (p *partitioning) register(fs *flag.FlagSet) {
	fs.IntVar(&p.count, "partitions", p.count,
		"split devices into this many fixed partitions by a hash of their id (brokers without sticky shared subscriptions); 0: off, this instance takes every device")
	fs.StringVar(&p.spec, "partition", p.spec,
		`partitions this instance owns with --partitions, e.g. "0-7,12"; every partition must be owned by exactly one instance`)
	fs.StringVar(&p.devicesFile, "devices-file", p.devicesFile,
		"device registry for --partitions: one device id per line, # starts a comment")
}

// enabled reports whether the instance subscribes to a subset of devices.
func (p *partitioning) enabled() bool { return p.count > 0 }

// load checks the flags, parses --partition and reads this instance's
// devices from the registry. shareGroup is --mqtt-share-group: the two are
// alternatives, since a shared subscription on a non-sticky broker would
// scatter a partition's devices again.
func (p *partitioning) load(shareGroup string) error {
	if p.count == 0 {
		if p.spec != "" || p.devicesFile != "" {
			return errors.New("--partition and --devices-file need --partitions")
		}
		return nil
	}
	if p.count < 0 || p.count > maxPartitions {
		return fmt.Errorf("--partitions %d: want 1..%d", p.count, maxPartitions)
	}
	if shareGroup != "" {
		return errors.New("--partitions and --mqtt-share-group are alternatives: use one")
	}
	owned, err := parsePartitionSpec(p.spec, p.count)
	if err != nil {
		return fmt.Errorf("--partition: %w", err)
	}
	if p.devicesFile == "" {
		return errors.New("--partitions needs --devices-file")
	}
	f, err := os.Open(p.devicesFile)
	if err != nil {
		return fmt.Errorf("--devices-file: %w", err)
	}
	defer f.Close()
	all, err := readDeviceRegistry(f)
	if err != nil {
		return fmt.Errorf("--devices-file %s: %w", p.devicesFile, err)
	}
	p.owned = owned
	p.devices = p.devices[:0]
	for _, d := range all {
		if owned[partitionOf(d, p.count)] {
			p.devices = append(p.devices, d)
		}
	}
	return nil
}

// partitionOf maps a device id to one of n partitions: the 64-bit FNV-1a
// hash of the id's bytes, passed through MurmurHash3's 64-bit finaliser
// (fmix64), modulo n. It is part of the deployment's configuration (a device
// must land in the same partition on every instance, in every version), so
// it must never change. The finaliser is needed: FNV-1a alone mixes the last
// bytes of an id poorly (ids like sim-0001 and sim-0002 bunch together), and
// ingest spreads an instance's devices over its workers with the 32-bit
// FNV-1a of the same id, so without mixing an instance owning the even
// partitions could find all its devices on one worker.
func partitionOf(device string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(device))
	return int(fmix64(h.Sum64()) % uint64(n))
}

// fmix64 is the finalisation step of MurmurHash3: every input bit affects
// every output bit.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// parsePartitionSpec parses a list of partitions and ranges such as
// "0-7,12" into a set of n flags. It rejects empty lists, numbers outside
// 0..n-1 and partitions listed twice (a typo that usually means another
// instance's partition was meant).
func parsePartitionSpec(spec string, n int) ([]bool, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("empty: list the partitions this instance owns, e.g. 0-7,12")
	}
	owned := make([]bool, n)
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("%q: not a partition number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("%q: not a partition number or range", part)
			}
		}
		if a < 0 || b >= n || a > b {
			return nil, fmt.Errorf("%q: want partitions in 0..%d, low to high", part, n-1)
		}
		for i := a; i <= b; i++ {
			if owned[i] {
				return nil, fmt.Errorf("partition %d listed twice", i)
			}
			owned[i] = true
		}
	}
	return owned, nil
}

// readDeviceRegistry reads device ids, one per line; blank lines and text
// after # are ignored. Every id must be valid on the wire, and an id listed
// twice is an error: registries are generated, and a duplicate means the
// generator is wrong.
func readDeviceRegistry(r io.Reader) ([]string, error) {
	var ids []string
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		id := strings.TrimSpace(text)
		if id == "" {
			continue
		}
		if !wire.ValidDevice(id) {
			return nil, fmt.Errorf("line %d: device id %q: want [A-Za-z0-9_-]{1,64}", line, id)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: device %q already on line %d", line, id, prev)
		}
		seen[id] = line
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("no device ids in it")
	}
	slices.Sort(ids)
	return ids, nil
}

// streamHandler is the handler of one inbound stream.
type streamHandler struct {
	stream  wire.Stream
	handler func(topic string, payload []byte)
}

// subscriptions returns the instance's MQTT subscriptions for the given
// streams, QoS 1. Without partitioning that is one wildcard filter per
// stream, {prefix}/+/{stream} (in its $share/{group}/ form when shareGroup
// is set); with it, one filter {prefix}/{device}/{stream} per owned device
// and stream. Per-stream filters rather than {prefix}/{device}/# keep the
// service's own alert, TENS and event messages from coming back to it.
func (p *partitioning) subscriptions(prefix, shareGroup string, hs ...streamHandler) []mqttclient.Subscription {
	var subs []mqttclient.Subscription
	for _, h := range hs {
		if !p.enabled() {
			f := prefix + "/+/" + h.stream.String()
			if shareGroup != "" {
				f = mqttclient.SharedFilter(shareGroup, f)
			}
			subs = append(subs, mqttclient.Subscription{Filter: f, QoS: 1, Handler: h.handler})
			continue
		}
		for _, d := range p.devices {
			subs = append(subs, mqttclient.Subscription{Filter: wire.Topic(prefix, d, h.stream), QoS: 1, Handler: h.handler})
		}
	}
	return subs
}
