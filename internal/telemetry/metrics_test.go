package telemetry

import (
	"runtime"
	"testing"
)

// TestRegistryExportsLiveHeap: the registry every binary uses carries the
// live heap of the last collection, besides the Go collector's defaults.
func TestRegistryExportsLiveHeap(t *testing.T) {
	t.Parallel()
	runtime.GC()
	fams, err := NewRegistry(Build{}).Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if len(f.GetMetric()) > 0 {
			got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if got["go_gc_heap_live_bytes"] <= 0 {
		t.Errorf("go_gc_heap_live_bytes = %v, want the live heap", got["go_gc_heap_live_bytes"])
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "taskstack_build_info"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}
