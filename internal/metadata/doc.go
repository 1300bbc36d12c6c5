// Package metadata holds the test of what a storage node learns from
// deaddrop traffic (docs/threat-model.md).
package metadata
