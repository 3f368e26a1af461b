// Package loadtests holds load, benchmark and fault drills run against the lab;
// each prints a report with its figures beside those of its anchor tool.
package loadtests
