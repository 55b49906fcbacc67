// Command peers measures Go's context package on the workloads of stopwire's criterion bench
// (benches/context.rs), under the same ids, so that `cargo xtask bench-report` can put Go beside
// stopwire and tokio-util.
//
// Each workload is timed with testing.Benchmark (which also counts heap allocations) several
// times after a discarded warm-up run; the median of the runs' nanoseconds per operation is
// reported. One JSON object per line goes to standard output:
//
//	{"id":"check/depth1","ns":9.8,"min_ns":9.7,"max_ns":10.1,"runs":11,"allocs":0,"bytes":0}
//
// Progress goes to standard error. `cargo xtask bench-peers` builds and runs this program.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"testing"
	"time"
)

// Sinks keep the compiler from dropping the work whose result nobody reads.
var (
	sinkErr   error
	sinkValue any
)

// key is the type of the value keys; distinct numbers are distinct keys.
type key int

// result is one line of output.
type result struct {
	ID     string  `json:"id"`
	Ns     float64 `json:"ns"`
	MinNs  float64 `json:"min_ns"`
	MaxNs  float64 `json:"max_ns"`
	Runs   int     `json:"runs"`
	Allocs float64 `json:"allocs"`
	Bytes  float64 `json:"bytes"`
}

// chain returns the leaf of n WithCancel contexts stacked on Background, and a function that
// cancels them all.
func chain(n int) (context.Context, func()) {
	ctx := context.Background()
	var cancels []context.CancelFunc
	for i := 0; i < n; i++ {
		var c context.CancelFunc
		ctx, c = context.WithCancel(ctx)
		cancels = append(cancels, c)
	}
	return ctx, func() {
		for _, c := range cancels {
			c()
		}
	}
}

func checkDepth(n int) func(b *testing.B) {
	return func(b *testing.B) {
		leaf, done := chain(n)
		defer done()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sinkErr = leaf.Err()
		}
	}
}

func checkDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sinkErr = ctx.Err()
	}
}

// createCancel: a child of a long-lived parent, canceled; canceling also unlinks it from the
// parent, which is all the release Go has (the rest is the garbage collector's).
func createCancel(b *testing.B) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, cancel := context.WithCancel(parent)
		cancel()
	}
}

func createTimeout(b *testing.B) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, cancel := context.WithTimeout(parent, time.Hour)
		cancel()
	}
}

// tree: a fresh root, fanout children of fanout children each, cancel the root, then every
// cancel function is called (what `defer cancel()` does in a Go program; it finds each context
// already canceled). The slice that holds the cancel functions is reused across iterations.
func tree(fanout int) func(b *testing.B) {
	return func(b *testing.B) {
		hold := make([]context.CancelFunc, 0, fanout*fanout+fanout)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			root, cancelRoot := context.WithCancel(context.Background())
			for j := 0; j < fanout; j++ {
				child, cancelChild := context.WithCancel(root)
				for k := 0; k < fanout; k++ {
					_, c := context.WithCancel(child)
					hold = append(hold, c)
				}
				hold = append(hold, cancelChild)
			}
			cancelRoot()
			for _, c := range hold {
				c()
			}
			for j := range hold {
				hold[j] = nil
			}
			hold = hold[:0]
		}
	}
}

// valueDepth10: the key is set on the top layer, ten layers with other keys sit below it, and
// the lookup starts at the lowest.
func valueDepth10(b *testing.B) {
	ctx := context.WithValue(context.Background(), key(1), 42)
	for k := 2; k <= 11; k++ {
		ctx = context.WithValue(ctx, key(k), k)
	}
	if ctx.Value(key(1)) != 42 {
		panic("value/depth10: lookup failed")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sinkValue = ctx.Value(key(1))
	}
}

// contended: two goroutines (GOMAXPROCS 2, one goroutine per P) doing createCancel under one
// shared parent; the time reported is wall time per operation, as in the Rust harness.
func contended(b *testing.B) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	b.SetParallelism(1)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, cancel := context.WithCancel(parent)
			cancel()
		}
	})
}

type workload struct {
	id string
	fn func(b *testing.B)
}

var workloads = []workload{
	{"check/depth1", checkDepth(1)},
	{"check/depth10", checkDepth(10)},
	{"check/deadline", checkDeadline},
	{"create_cancel/cancel", createCancel},
	{"create_cancel/timeout", createTimeout},
	{"tree/111", tree(10)},
	{"tree/931", tree(30)},
	{"value/depth10", valueDepth10},
	{"contended/create_cancel", contended},
}

func measure(w workload, runs int) result {
	testing.Benchmark(w.fn) // warm-up, discarded
	ns := make([]float64, 0, runs)
	var allocs, bytes float64
	for r := 0; r < runs; r++ {
		br := testing.Benchmark(w.fn)
		if br.N == 0 {
			fmt.Fprintf(os.Stderr, "%s: benchmark failed\n", w.id)
			os.Exit(1)
		}
		ns = append(ns, float64(br.T.Nanoseconds())/float64(br.N))
		allocs += float64(br.MemAllocs) / float64(br.N)
		bytes += float64(br.MemBytes) / float64(br.N)
	}
	sort.Float64s(ns)
	med := ns[len(ns)/2]
	if len(ns)%2 == 0 {
		med = (ns[len(ns)/2-1] + ns[len(ns)/2]) / 2
	}
	return result{
		ID:     w.id,
		Ns:     med,
		MinNs:  ns[0],
		MaxNs:  ns[len(ns)-1],
		Runs:   runs,
		Allocs: allocs / float64(runs),
		Bytes:  bytes / float64(runs),
	}
}

func main() {
	opts := flag.NewFlagSet("peers", flag.ExitOnError)
	runs := opts.Int("runs", 11, "timed runs per workload (after one warm-up run)")
	benchtime := opts.Duration("benchtime", 300*time.Millisecond, "length of one run")
	filter := opts.String("filter", "", "only workloads whose id contains this")
	_ = opts.Parse(os.Args[1:])

	testing.Init()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		panic(err)
	}
	runtime.GOMAXPROCS(2)
	out := json.NewEncoder(os.Stdout)
	for _, w := range workloads {
		if *filter != "" && !contains(w.id, *filter) {
			continue
		}
		r := measure(w, *runs)
		fmt.Fprintf(os.Stderr, "go %-26s %10.2f ns/op  [%0.2f - %0.2f]  %.2f allocs/op\n",
			r.ID, r.Ns, r.MinNs, r.MaxNs, r.Allocs)
		if err := out.Encode(r); err != nil {
			panic(err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
