// Package benchmarks holds deaddrop's end-to-end benchmarks (make bench):
// catch-up and send on every backend, each reported as a ratio against the
// raw store operations on the same store in the same run, and the Bee /feeds
// lookup baseline. Figures go to docs/benchmarks.md.
package benchmarks
