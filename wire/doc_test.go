package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The worked examples in docs/wire-format.md are generated here, so the
// document cannot drift from the code. After a deliberate format change run
//
//	go test ./wire -run TestDocExamples -update-doc
//
// and review the diff of the document.
var updateDoc = flag.Bool("update-doc", false, "rewrite the generated examples in docs/wire-format.md")

const docPath = "../docs/wire-format.md"

// docEMG is the spec's JSON example frame.
func docEMG() *EMGFrame {
	return &EMGFrame{
		Seq: 1042, T0: 1763946000123456, Rate: 1000, Unit: Microvolt,
		Channels: []Channel{{Calf, Left}, {Hamstring, Left}},
		Data:     [][]float64{{12.5, -4.0, 8.1}, {3.0, 4.2, -1.7}},
	}
}

func docIMU() *IMUFrame {
	return &IMUFrame{
		Seq: 7, T0: 1763946000123456, Rate: 50, Site: Site{Shank, Left},
		Acc: [][3]float64{{0.01, -0.98, 0.05}, {0.02, -0.97, 0.04}},
		Gyr: [][3]float64{{1.5, -2.25, 100}, {1, 2, 3}},
	}
}

// dumper writes an annotated dump, one row per field, reading each field
// at the documented offset rather than trusting the encoder.
type dumper struct {
	b   []byte
	off int
	out strings.Builder
}

func (d *dumper) row(n int, meaning string, args ...any) {
	fmt.Fprintf(&d.out, "%4d  %-24s %s\n", d.off, spaced(d.b[d.off:d.off+n]), fmt.Sprintf(meaning, args...))
	d.off += n
}

func (d *dumper) u16() uint16  { return binary.LittleEndian.Uint16(d.b[d.off:]) }
func (d *dumper) u32() uint32  { return binary.LittleEndian.Uint32(d.b[d.off:]) }
func (d *dumper) f32() float32 { return math.Float32frombits(d.u32()) }

func spaced(b []byte) string {
	h := hex.EncodeToString(b)
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

func (d *dumper) header(kind string) (n, nch int) {
	d.out.WriteString(" off  bytes                    meaning\n")
	d.row(1, "magic 0xC7")
	d.row(1, "version %d", d.b[1])
	d.row(1, "stream %d = %s", d.b[2], Stream(d.b[2]))
	if kind == "emg" {
		d.row(1, "unit %d = %s", d.b[3], Unit(d.b[3]))
	} else {
		s, _ := siteFromCode(d.b[3])
		d.row(1, "site 0x%02x = %s", d.b[3], s)
	}
	d.row(4, "seq %d", d.u32())
	d.row(8, "t0 %d µs", int64(binary.LittleEndian.Uint64(d.b[d.off:])))
	d.row(4, "rate %d mHz = %g Hz", d.u32(), float64(d.u32())/1000)
	n = int(d.u16())
	d.row(2, "%d samples per channel", n)
	nch = int(d.b[d.off])
	d.row(1, "%d channels", nch)
	d.row(1, "reserved, 0")
	return n, nch
}

func (d *dumper) samples(name string, n int, scale float32, unit string) {
	vals := make([]string, n)
	for i := range n {
		q := int16(binary.LittleEndian.Uint16(d.b[d.off+2*i:]))
		vals[i] = fmt.Sprintf("%d (%.4g %s)", q, float64(q)*float64(scale), unit)
	}
	d.row(2*n, "%s: %s", name, strings.Join(vals, ", "))
}

func (d *dumper) crc() {
	d.row(4, "CRC-32 0x%08x of bytes 0..%d", d.u32(), d.off-1)
}

func dumpEMG(b []byte) string {
	d := &dumper{b: b}
	n, nch := d.header("emg")
	chs := make([]Channel, nch)
	scales := make([]float32, nch)
	for i := range nch {
		chs[i], _ = channelFromCode(b[d.off])
		d.row(4, "channel %d: code 0x%02x = %s, 3 reserved bytes", i, b[d.off], chs[i])
		scales[i] = d.f32()
		d.row(4, "channel %d: scale %g µV per count", i, scales[i])
	}
	for i := range nch {
		d.samples(chs[i].String(), n, scales[i], "µV")
	}
	d.crc()
	return d.out.String()
}

func dumpIMU(b []byte) string {
	d := &dumper{b: b}
	n, _ := d.header("imu")
	acc := d.f32()
	d.row(4, "acc scale %g g per count", acc)
	gyr := d.f32()
	d.row(4, "gyr scale %g dps per count", gyr)
	for i := range n {
		d.samples(fmt.Sprintf("acc[%d] x,y,z", i), 3, acc, "g")
	}
	for i := range n {
		d.samples(fmt.Sprintf("gyr[%d] x,y,z", i), 3, gyr, "dps")
	}
	d.crc()
	return d.out.String()
}

// docExamples maps each generated block's name to its content.
func docExamples(t *testing.T) map[string]string {
	emg := mustEMGBinary(t, docEMG())
	imu := mustIMUBinary(t, docIMU())
	return map[string]string{
		"emg-json":       string(AppendEMGJSON(nil, docEMG())) + "\n",
		"imu-json":       string(AppendIMUJSON(nil, docIMU())) + "\n",
		"emg-binary":     dumpEMG(emg),
		"emg-binary-hex": hex.EncodeToString(emg) + "\n",
		"imu-binary":     dumpIMU(imu),
		"imu-binary-hex": hex.EncodeToString(imu) + "\n",
	}
}

var generatedBlock = regexp.MustCompile("(?s)(<!-- generated:([a-z-]+) -->\n```[a-z]*\n)(.*?)(```\n)")

func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want := docExamples(t)
	found := map[string]bool{}
	stale := false
	out := generatedBlock.ReplaceAllFunc(doc, func(m []byte) []byte {
		sub := generatedBlock.FindSubmatch(m)
		name := string(sub[2])
		content, ok := want[name]
		if !ok {
			t.Errorf("document has unknown generated block %q", name)
			return m
		}
		found[name] = true
		if string(sub[3]) != content {
			stale = true
			if !*updateDoc {
				t.Errorf("block %q in %s is stale; run go test ./wire -run TestDocExamples -update-doc\nwant:\n%s", name, docPath, content)
			}
		}
		return bytes.Join([][]byte{sub[1], []byte(content), sub[4]}, nil)
	})
	for name := range want {
		if !found[name] {
			t.Errorf("%s lacks the generated block %q", docPath, name)
		}
	}
	if *updateDoc && stale {
		if err := os.WriteFile(docPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The generated examples must also decode.
	d := NewDecoder(0)
	var f EMGFrame
	var g IMUFrame
	for name, p := range map[string][]byte{"emg-json": []byte(want["emg-json"]), "emg-binary": mustEMGBinary(t, docEMG())} {
		if err := d.DecodeEMG(p, &f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, p := range map[string][]byte{"imu-json": []byte(want["imu-json"]), "imu-binary": mustIMUBinary(t, docIMU())} {
		if err := d.DecodeIMU(p, &g); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestDocReasons checks that the document lists every rejection reason.
func TestDocReasons(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Reasons() {
		if !bytes.Contains(doc, []byte("| `"+string(r)+"` |")) {
			t.Errorf("%s does not document reason %s in its reason table", docPath, r)
		}
	}
}
