package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"

	"github.com/crampwatch/crampwatch/evaluate"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
)

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crampwatch eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o evaluate.Options
	var scenario, truthPath, eventsPath string
	var asJSON bool
	fs.IntVar(&o.Nights, "nights", 20, "simulated nights (one wearer each)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed: the same seed and scenario give the same nights and the same report")
	fs.StringVar(&scenario, "scenario", "", "scenario file (YAML/JSON, see firmware-sim/scenarios); empty: a typical 8-hour night")
	fs.Float64Var(&o.Rate, "rate", 0, "override the EMG sample rate, Hz (250-4000)")
	fs.Float64Var(&o.Mains, "mains", 0, "override the mains frequency: 50 or 60 Hz")
	fs.Float64Var(&o.Gain, "gain", 0, "multiply every wearer's electrode gain (0.5 halves it, 2 doubles it)")
	fs.Float64Var(&o.Hours, "hours", 0, "override the night length (event rates per hour are kept)")
	fs.IntVar(&o.Parallel, "parallel", 0, "nights simulated at once; 0: one per CPU")
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	fs.StringVar(&truthPath, "truth-out", "", "also write the ground truth as JSON Lines to this file")
	fs.StringVar(&eventsPath, "events-out", "", "also write the detected events as JSON Lines to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if scenario != "" {
		sc, err := firmwaresim.LoadScenario(scenario)
		if err != nil {
			return err
		}
		o.Scenario = sc
	}
	for _, out := range []struct {
		path string
		w    *io.Writer
	}{{truthPath, &o.Truth}, {eventsPath, &o.Events}} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			return err
		}
		defer f.Close()
		*out.w = f
	}
	rep, err := evaluate.Run(ctx, o)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(stdout, rep)
	return nil
}

// printReport prints the figures that matter to a wearer first.
func printReport(w io.Writer, r evaluate.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, v any, target string) {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", name, v, target)
	}
	f := func(v evaluate.Float, digits int) string {
		if math.IsNaN(float64(v)) {
			return "n/a"
		}
		return fmt.Sprintf("%.*f", digits, float64(v))
	}
	fmt.Fprintf(tw, "figure\tvalue\ttarget\n")
	row("nights", r.Nights, "")
	row("simulated hours", fmt.Sprintf("%.1f", r.Hours), "")
	row("cramps (truth)", r.Cramps, "")
	row("cramp sensitivity", f(r.CrampSensitivity, 3), ">= 0.97")
	row("cramp precision", f(r.CrampPrecision, 3), ">= 0.97")
	row("false alerts per night", f(r.FalseAlertsPerNight, 3), "<= 0.05")
	row("alert latency median, s", f(r.AlertLatencyMedianS, 2), "<= 5")
	row("alert latency p95, s", f(r.AlertLatencyP95S, 2), "<= 10")
	row("duration error median, s", f(r.DurationErrorMedianS, 2), "<= 1.5")
	row("PLM F1", f(r.PLMF1, 3), ">= 0.90")
	row("PLM precision / recall", f(r.PLMPrecision, 3)+" / "+f(r.PLMRecall, 3), "")
	row("movement false cramps", r.MovementFalseCramps, "")
	row("movement recall / precision", f(r.MovementRecall, 3)+" / "+f(r.MovementPrecision, 3), "")
	row("artifact recall", f(r.ArtifactRecall, 3), "")
	row("samples per second", fmt.Sprintf("%.3g", float64(r.SamplesPerSecond)), "")
	row("real-time factor", fmt.Sprintf("%.0fx", float64(r.RealtimeFactor)), "")
	tw.Flush()
	if len(r.FalseAlertsBy) > 0 {
		fmt.Fprintf(w, "\nfalse alerts by what they overlapped: %v\n", r.FalseAlertsBy)
	}
	for _, d := range r.MissedCramps {
		b, _ := json.Marshal(d)
		fmt.Fprintf(w, "missed cramp: %s\n", b)
	}
	for _, d := range r.FalseAlertList {
		b, _ := json.Marshal(d)
		fmt.Fprintf(w, "false alert: %s\n", b)
	}
}
