package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

func TestParsePartitionSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		n    int
		want []int // owned partitions; nil: error
	}{
		{"0", 4, []int{0}},
		{"0-3", 4, []int{0, 1, 2, 3}},
		{"1, 3", 4, []int{1, 3}},
		{"0-1,5-6,9", 10, []int{0, 1, 5, 6, 9}},
		{" 2 - 3 ", 4, []int{2, 3}},
		{"", 4, nil},
		{"4", 4, nil},     // out of range
		{"-1", 4, nil},    // negative
		{"3-1", 4, nil},   // backwards
		{"1,1", 4, nil},   // twice
		{"0-2,2", 4, nil}, // overlap
		{"a", 4, nil},
		{"1-", 4, nil},
		{"1,,2", 4, nil},
	} {
		owned, err := parsePartitionSpec(tc.spec, tc.n)
		if tc.want == nil {
			if err == nil {
				t.Errorf("parsePartitionSpec(%q, %d) accepted: %v", tc.spec, tc.n, owned)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePartitionSpec(%q, %d): %v", tc.spec, tc.n, err)
			continue
		}
		var got []int
		for p, ok := range owned {
			if ok {
				got = append(got, p)
			}
		}
		if !slices.Equal(got, tc.want) || len(owned) != tc.n {
			t.Errorf("parsePartitionSpec(%q, %d) = %v (len %d), want %v", tc.spec, tc.n, got, len(owned), tc.want)
		}
	}
}

func TestReadDeviceRegistry(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // nil: error
	}{
		{"plain", "b-2\na-1\n", []string{"a-1", "b-2"}},
		{"comments and blanks", "# fleet\n\n  w_17  # calf only\nw_03\r\n", []string{"w_03", "w_17"}},
		{"invalid id", "ok\nnot/ok\n", nil},
		{"wildcard id", "+\n", nil},
		{"duplicate", "a\nb\na\n", nil},
		{"empty", "# nothing\n\n", nil},
	} {
		got, err := readDeviceRegistry(strings.NewReader(tc.text))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: accepted: %v", tc.name, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestPartitionOfStable pins the mapping: a deployment's instances and
// every future version must agree where a device belongs. The expected
// values follow the documented rule (fmix64 of FNV-1a 64, modulo n) with the
// standard library's FNV, and fmix64 itself is pinned by known values.
func TestPartitionOfStable(t *testing.T) {
	for _, id := range []string{"sim-0000", "sim-0001", "w_17", "A", strings.Repeat("z", 64)} {
		h := fnv.New64a()
		h.Write([]byte(id))
		for _, n := range []int{1, 2, 7, 64, 4096} {
			want := int(fmix64(h.Sum64()) % uint64(n))
			if got := partitionOf(id, n); got != want {
				t.Errorf("partitionOf(%q, %d) = %d, want %d", id, n, got, want)
			}
		}
	}
	// fmix64(0) is 0; fmix64(1) is MurmurHash3's well-known 0xb456bcfc34c2cb2c.
	if got := fmix64(0); got != 0 {
		t.Errorf("fmix64(0) = %#x", got)
	}
	if got := fmix64(1); got != 0xb456bcfc34c2cb2c {
		t.Errorf("fmix64(1) = %#x, want 0xb456bcfc34c2cb2c", got)
	}
}

// TestPartitionSpread checks devices spread evenly over partitions, and
// that an instance owning every other partition still spreads its devices
// over its ingest workers (which hash the same ids with 32-bit FNV-1a).
func TestPartitionSpread(t *testing.T) {
	const devices, parts, shards = 20000, 16, 2
	counts := make([]int, parts)
	var shardCount [shards]int
	for i := range devices {
		id := fmt.Sprintf("sim-%05d", i)
		p := partitionOf(id, parts)
		counts[p]++
		if p%2 == 0 {
			h := fnv.New32a()
			h.Write([]byte(id))
			shardCount[h.Sum32()%shards]++
		}
	}
	mean := float64(devices) / parts
	for p, c := range counts {
		if float64(c) < 0.85*mean || float64(c) > 1.15*mean {
			t.Errorf("partition %d has %d devices, mean %.0f", p, c, mean)
		}
	}
	total := shardCount[0] + shardCount[1]
	for s, c := range shardCount {
		if float64(c) < 0.4*float64(total) {
			t.Errorf("even partitions: worker %d has %d of %d devices", s, c, total)
		}
	}
}

func TestPartitioningLoad(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "devices.txt")
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("dev-%02d", i))
	}
	if err := os.WriteFile(reg, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (*partitioning, error) {
		var p partitioning
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		p.register(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &p, p.load("")
	}

	// Three instances covering partitions 0-7 take every device exactly once.
	owner := map[string]int{}
	for i, spec := range []string{"0-2", "3-5", "6,7"} {
		p, err := parse("--partitions", "8", "--partition", spec, "--devices-file", reg)
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		for _, d := range p.devices {
			if prev, dup := owner[d]; dup {
				t.Errorf("device %s owned by instances %d and %d", d, prev, i)
			}
			owner[d] = i
			if !p.owned[partitionOf(d, 8)] {
				t.Errorf("instance %d took %s of partition %d", i, d, partitionOf(d, 8))
			}
		}
	}
	if len(owner) != len(ids) {
		t.Errorf("%d of %d devices owned", len(owner), len(ids))
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"partition without partitions", []string{"--partition", "0"}},
		{"registry without partitions", []string{"--devices-file", reg}},
		{"no registry", []string{"--partitions", "4", "--partition", "0"}},
		{"no partition list", []string{"--partitions", "4", "--devices-file", reg}},
		{"negative", []string{"--partitions", "-1", "--partition", "0", "--devices-file", reg}},
		{"too many", []string{"--partitions", "5000", "--partition", "0", "--devices-file", reg}},
		{"missing registry", []string{"--partitions", "4", "--partition", "0", "--devices-file", filepath.Join(dir, "nope")}},
	} {
		if _, err := parse(tc.args...); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	var p partitioning
	p.count, p.spec, p.devicesFile = 4, "0", reg
	if err := p.load("workers"); err == nil {
		t.Error("partitions with a share group: accepted")
	}
}

func TestPartitionSubscriptions(t *testing.T) {
	nop := func(string, []byte) {}
	hs := []streamHandler{{wire.StreamEMG, nop}, {wire.StreamAck, nop}}
	filters := func(p *partitioning, share string) []string {
		var out []string
		for _, s := range p.subscriptions("cw/v1", share, hs...) {
			if s.QoS != 1 || s.Handler == nil {
				t.Errorf("%s: QoS %d, handler set %v", s.Filter, s.QoS, s.Handler != nil)
			}
			out = append(out, s.Filter)
		}
		return out
	}
	var off partitioning
	if got, want := filters(&off, ""), []string{"cw/v1/+/emg", "cw/v1/+/ack"}; !slices.Equal(got, want) {
		t.Errorf("off: %v, want %v", got, want)
	}
	if got, want := filters(&off, "g"), []string{"$share/g/cw/v1/+/emg", "$share/g/cw/v1/+/ack"}; !slices.Equal(got, want) {
		t.Errorf("shared: %v, want %v", got, want)
	}
	on := partitioning{count: 2, devices: []string{"a", "b"}}
	want := []string{"cw/v1/a/emg", "cw/v1/b/emg", "cw/v1/a/ack", "cw/v1/b/ack"}
	if got := filters(&on, ""); !slices.Equal(got, want) {
		t.Errorf("partitioned: %v, want %v", got, want)
	}
}
