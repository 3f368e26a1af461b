// Package deploy holds how regionsync runs for real: the local multi-region lab
// under deploy/lab and, later, Kubernetes manifests, alert rules and dashboards.
package deploy
